// Package render turns engine results into what the sgrules CLI prints: a
// terraform-like text plan, a drift report, the pull-request Markdown, the
// Mermaid and DOT graphs, and stable JSON documents. It is part of the
// report layer (internal/report and below), under both the CLI and the
// Lambda functions. It is pure (no AWS, no terminal detection): the caller
// passes group names and whether to colour.
//
// It may import internal/reconcile, pkg/* and internal/report.
package render
