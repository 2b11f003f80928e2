//go:build !linux

package childproc

import "syscall"

// sysProcAttr: outside Linux there is no death signal; the child ends
// with Kill or Stop (or the test's cleanup).
func sysProcAttr(cred *syscall.Credential, group bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: group}
}
