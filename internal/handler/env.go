package handler

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sgrules/sgrules/internal/reconcile"
)

// Environment parsing shared by the functions' main packages. The main
// packages call os.Getenv themselves, so the template test can see which
// variables each function reads.

// Prefix normalises RULES_PREFIX: empty means the default "rules/"; a
// prefix without a trailing slash gets one ("rules" is "rules/"), so keys
// relative to it never start with "/". Use "/" for the whole bucket.
func Prefix(v string) string {
	switch {
	case v == "":
		return "rules/"
	case v == "/":
		return ""
	case !strings.HasSuffix(v, "/"):
		return v + "/"
	}
	return v
}

// MaxRevoke parses MAX_REVOKE: empty means reconcile.DefaultMaxRevoke, a
// negative number means no limit.
func MaxRevoke(v string) (int, error) {
	if v == "" {
		return reconcile.DefaultMaxRevoke, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("MAX_REVOKE %q: not an integer", v)
	}
	if n == 0 {
		return 0, fmt.Errorf("MAX_REVOKE %q: must not be 0 (use a negative number for no limit)", v)
	}
	return n, nil
}

// DriftMode is what the drift function does with drift.
type DriftMode string

const (
	DriftRevert DriftMode = "revert" // the default
	DriftReport DriftMode = "report" // plan only (DryRun)
)

// ParseDriftMode parses DRIFT_MODE (empty means revert).
func ParseDriftMode(v string) (DriftMode, error) {
	switch m := DriftMode(strings.ToLower(strings.TrimSpace(v))); m {
	case "":
		return DriftRevert, nil
	case DriftRevert, DriftReport:
		return m, nil
	}
	return "", fmt.Errorf("DRIFT_MODE %q: want report or revert", v)
}

// List splits a comma-separated variable (SGRULES_ROLE_ARNS), dropping
// blanks.
func List(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
