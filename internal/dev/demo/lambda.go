package demo

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sgrules/sgrules/internal/dev/lambdaemu"
)

// rieInvokeTimeout bounds one invocation of a demo function.
const rieInvokeTimeout = 2 * time.Minute

// function is a demo function running under the emulator.
type function struct {
	name string
	*lambdaemu.Function
}

// startFunction runs bootstrap under the emulator at rie with env as the
// function's environment, named sgrules-demo-NAME, and waits until it
// accepts invocations. The caller must call Stop.
func startFunction(ctx context.Context, rie, name, bootstrap string, env []string) (*function, error) {
	env = append([]string{"AWS_LAMBDA_FUNCTION_NAME=sgrules-demo-" + name}, env...)
	f, err := lambdaemu.Start(ctx, rie, bootstrap, env, lambdaemu.WithInvokeTimeout(rieInvokeTimeout))
	if err != nil {
		return nil, fmt.Errorf("%s function: %w", name, err)
	}
	return &function{name: name, Function: f}, nil
}

// invoke posts payload and returns the response body. A function error is a
// 200 response whose body has errorMessage and errorType; it is returned as
// an error, as is any other status.
func (f *function) invoke(ctx context.Context, payload []byte) ([]byte, error) {
	status, body, err := f.Invoke(ctx, payload)
	if err != nil {
		return nil, fmt.Errorf("invoke %s function: %w", f.name, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("invoke %s function: status %d %s: %s", f.name, status, http.StatusText(status), body)
	}
	if bytes.Contains(body, []byte(`"errorMessage"`)) && bytes.Contains(body, []byte(`"errorType"`)) {
		return nil, fmt.Errorf("invoke %s function: function error: %s", f.name, body)
	}
	return body, nil
}

// logLines returns the function's output lines.
func (f *function) logLines() []string {
	return strings.Split(strings.TrimRight(f.Logs(), "\n"), "\n")
}
