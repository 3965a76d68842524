//go:build unix

package lambdaemu

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts cmd in its own process group, so that a Ctrl-C in
// the terminal does not reach it and killGroup also reaches the processes
// it starts (the runtime under the emulator, the compilers under go build).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func terminate(cmd *exec.Cmd) { _ = cmd.Process.Signal(syscall.SIGTERM) }

// killGroup kills cmd's process group (its id is cmd's pid).
func killGroup(cmd *exec.Cmd) error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
