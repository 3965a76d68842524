// Command echo is a tiny Lambda function for testing the emulator runner: it
// returns the payload it was given, with the request id, one environment
// variable and a log line; a payload {"fail": "msg"} makes it fail.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type reply struct {
	Payload   json.RawMessage `json:"payload"`
	RequestID string          `json:"requestId"`
	Env       string          `json:"env"`
}

func main() {
	log := lambdacontext.NewLogger()
	lambda.Start(func(ctx context.Context, payload json.RawMessage) (reply, error) {
		log.InfoContext(ctx, "echo", "bytes", len(payload))
		var in struct {
			Fail string `json:"fail"`
		}
		if json.Unmarshal(payload, &in) == nil && in.Fail != "" {
			return reply{}, errors.New(in.Fail)
		}
		r := reply{Payload: payload, Env: os.Getenv("ECHO_ENV")}
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			r.RequestID = lc.AwsRequestID
		}
		return r, nil
	})
}
