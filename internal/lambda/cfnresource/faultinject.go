//go:build faultinject

package cfnresource

import "os"

// Builds with -tags faultinject (end-to-end tests only, never a release)
// install a fault hook: SGRULES_FAULT_PANIC=1 in the function's
// environment makes every custom resource request panic just before the
// engine runs, to prove CloudFormation is still answered (FAILED).
func init() {
	if os.Getenv("SGRULES_FAULT_PANIC") == "1" {
		faultHook = func() { panic("fault injected by SGRULES_FAULT_PANIC") }
	}
}
