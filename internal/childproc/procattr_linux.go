//go:build linux

package childproc

import "syscall"

// sysProcAttr runs the child as cred (nil: this process's user), in a
// process group of its own with group, and has the kernel kill it when
// the thread that started it ends, which Start ties to the life of the
// child's waiter in this process. The death signal is set after the change
// of user, so the kernel keeps it.
func sysProcAttr(cred *syscall.Credential, group bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: group, Pdeathsig: syscall.SIGKILL}
}
