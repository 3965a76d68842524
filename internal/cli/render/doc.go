// Package render turns engine results into what the sgrules CLI prints: a
// terraform-like text plan, a drift report, and stable JSON documents. It
// is pure (no AWS, no terminal detection): the caller passes group names
// and whether to colour.
//
// It may import internal/reconcile, pkg/* and internal/report (the
// presentation it shares with the Lambda functions); no AWS calls of its
// own beyond what its caller passes in.
package render
