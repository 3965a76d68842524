package cfnresource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/cfn"
)

// MaxResponseSize is CloudFormation's limit on a custom resource response
// body; Encode keeps bodies strictly below it.
const MaxResponseSize = 4096

// Sending bounds.
const (
	defaultAttempts = 5
	defaultBackoff  = 500 * time.Millisecond
	attemptTimeout  = 10 * time.Second
	// sendMargin is kept before the Lambda deadline so that the handler
	// returns (and logs) before the function is stopped.
	sendMargin = 250 * time.Millisecond
	// sendTimeout bounds sending when the context has no deadline.
	sendTimeout = time.Minute
)

const truncated = " …(truncated; see the sgrules function's logs)"

// Encode marshals r into a body smaller than MaxResponseSize: a long Reason
// is cut (on a character boundary) and marked; if Data is still too large,
// RuleIds keeps as many whole ids as fit and RuleIdsTruncated is "true".
// r is changed accordingly. HTML characters are not escaped.
func Encode(r *cfn.Response) ([]byte, error) {
	b, err := marshal(r)
	if err != nil || len(b) < MaxResponseSize {
		return b, err
	}
	if orig := r.Reason; orig != "" {
		// The longest prefix that fits, by bisection (JSON escapes make
		// the encoded length of a prefix hard to predict).
		fits := func(n int) ([]byte, bool, error) {
			r.Reason = cutUTF8(orig, n) + truncated
			b, err := marshal(r)
			return b, err == nil && len(b) < MaxResponseSize, err
		}
		lo, hi := 0, len(orig)
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if _, ok, err := fits(mid); err != nil {
				return nil, err
			} else if ok {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		if b, _, err = fits(lo); err != nil {
			return nil, err
		}
	}
	if ids, ok := r.Data["RuleIds"].(string); ok && len(b) >= MaxResponseSize {
		list := strings.Split(ids, ",")
		r.Data["RuleIdsTruncated"] = "true"
		for len(b) >= MaxResponseSize && len(list) > 0 {
			list = list[:len(list)-1]
			r.Data["RuleIds"] = strings.Join(list, ",")
			if b, err = marshal(r); err != nil {
				return nil, err
			}
		}
	}
	if len(b) >= MaxResponseSize {
		return b, fmt.Errorf("response of %d bytes is over the CloudFormation limit of %d even without a reason", len(b), MaxResponseSize)
	}
	return b, nil
}

func marshal(r *cfn.Response) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// cutUTF8 returns the longest prefix of s of at most n bytes that does not
// split a character.
func cutUTF8(s string, n int) string {
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// send PUTs the response to the pre-signed URL. Unlike cfn.Response.Send it
// retries transient failures (connection errors, 408, 429, 5xx) with
// exponential backoff and jitter, bounds every attempt, and stops in time
// for the Lambda deadline. The request has no Content-Type: the pre-signed
// S3 URL is signed with an empty one.
func (o Options) send(ctx context.Context, log *slog.Logger, url string, r *cfn.Response) error {
	body, err := Encode(r)
	if err != nil {
		log.ErrorContext(ctx, "response too large", "error", err)
	}
	if url == "" {
		return errors.New("send response: the request has no ResponseURL")
	}
	client := o.Client
	if client == nil {
		client = &http.Client{}
	}
	attempts, backoff := o.Attempts, o.Backoff
	if attempts <= 0 {
		attempts = defaultAttempts
	}
	if backoff <= 0 {
		backoff = defaultBackoff
	}
	// Sending must not stop because the work's context was cancelled; it
	// stops at the Lambda deadline.
	sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
	if dl, ok := ctx.Deadline(); ok {
		cancel()
		sendCtx, cancel = context.WithDeadline(context.WithoutCancel(ctx), dl.Add(-sendMargin))
	}
	defer cancel()

	for attempt := 1; ; attempt++ {
		retry, err := put(sendCtx, client, url, body)
		if err == nil {
			log.InfoContext(ctx, "response sent", "status", r.Status, "attempt", attempt, "bytes", len(body))
			return nil
		}
		if !retry || attempt >= attempts || sendCtx.Err() != nil {
			log.ErrorContext(ctx, "response not sent", "status", r.Status, "attempt", attempt, "error", err)
			return fmt.Errorf("send %s response after %d attempts: %w", r.Status, attempt, err)
		}
		wait := backoff<<(attempt-1) + rand.N(backoff/2+1)
		log.WarnContext(ctx, "response not sent: retrying", "attempt", attempt, "wait", wait, "error", err)
		select {
		case <-time.After(wait):
		case <-sendCtx.Done():
			log.ErrorContext(ctx, "response not sent: out of time", "status", r.Status, "attempt", attempt, "error", err)
			return fmt.Errorf("send %s response: out of time after %d attempts: %w", r.Status, attempt, err)
		}
	}
}

// put makes one attempt and tells whether a failure is worth retrying.
func put(ctx context.Context, client *http.Client, url string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("response URL: %w", err)
	}
	// No Content-Type header at all (Go sets none for a PUT unless asked).
	req.Header.Del("Content-Type")
	resp, err := client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	err = fmt.Errorf("PUT response: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout, err
}
