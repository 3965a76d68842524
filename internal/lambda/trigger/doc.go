// Package trigger decodes the events that invoke the sgrules Lambda
// functions into plain values, recognising each by its shape: S3 event
// notifications (direct or in an SQS batch), S3 events delivered by
// EventBridge, EventBridge scheduled events, CloudTrail API calls delivered
// by EventBridge, and CloudFormation custom resource requests.
//
// Decoding never calls AWS and never decides what to do: the handler turns
// an Event into a reconcile.Request.
//
// It may import internal/reconcile, pkg/*, the Lambda libraries and
// adapters; never the CLI or development tooling.
package trigger
