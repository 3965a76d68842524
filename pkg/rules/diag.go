package rules

import (
	"fmt"
	"strings"
)

// MaxFileSize is the largest rule file accepted; larger files are refused
// before parsing.
const MaxFileSize = 1 << 20

// Severity of a diagnostic.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Diagnostic is one problem found in a rule file, located at the offending
// node. Rule is the rule name ("" for file-level problems), Field the field
// path ("fromPort", "cidrBlocks[1]").
type Diagnostic struct {
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Col      int      `json:"col"`
	Rule     string   `json:"rule,omitempty"`
	Field    string   `json:"field,omitempty"`
	Severity Severity `json:"severity"`
	Msg      string   `json:"message"`
}

// String renders "FILE:LINE:COL: RULE: message" (the rule part is left out
// for file-level problems; warnings say so).
func (d Diagnostic) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: ", d.File, d.Line, d.Col)
	if d.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	if d.Rule != "" {
		b.WriteString(d.Rule)
		b.WriteString(": ")
	}
	b.WriteString(d.Msg)
	return b.String()
}

// Diagnostics is every problem found in one or more files.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error (not a warning).
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Strings renders each diagnostic.
func (ds Diagnostics) Strings() []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// Err returns a *ValidationError holding the error diagnostics, or nil when
// there are none (warnings alone are not an error).
func (ds Diagnostics) Err() error {
	var errs []Diagnostic
	for _, d := range ds {
		if d.Severity == SeverityError {
			errs = append(errs, d)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &ValidationError{Diagnostics: errs}
}

// ValidationError is invalid user input: terminal, never retried.
type ValidationError struct {
	Diagnostics Diagnostics
}

func (e *ValidationError) Error() string {
	return strings.Join(e.Diagnostics.Strings(), "\n")
}
