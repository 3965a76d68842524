// Package sqsqueue sends messages to an SQS queue in batches; the drift
// planner uses it to put one sweep message per target (and per shard of
// groups) on the SweepQueue.
//
// Send packs up to 10 bodies into one SendMessageBatch call, keeping each
// call's total payload within MaxBatchBytes, and sends again only the
// entries SQS reports as failed (not those failed by the sender's fault,
// which cannot succeed on a retry). Whole-call errors (throttling, 5xx)
// are the SDK retryer's; what is left of them is returned.
//
// It may import the AWS SDK and the standard library; never the engine,
// a Lambda shell or the CLI (the port it satisfies is declared where it is
// used, and is shaped so that *Queue fits it).
package sqsqueue
