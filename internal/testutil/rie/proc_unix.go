//go:build unix

package rie

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the emulator in its own process group, so that
// stopping it also reaches the runtime process it started.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func terminate(cmd *exec.Cmd) { _ = cmd.Process.Signal(syscall.SIGTERM) }

// kill kills the emulator's process group (its id is the emulator's pid).
func kill(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
