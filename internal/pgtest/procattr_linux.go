//go:build linux

package pgtest

import "syscall"

// sysProcAttr runs PostgreSQL as cred (nil: this process's user) in a
// process group of its own, and has the kernel kill it when the thread
// that started it ends, which start ties to the life of the server's
// waiter in this process: a test binary that dies, however it dies,
// leaves no server behind. The death signal is set after the change of
// user, so the kernel keeps it.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
