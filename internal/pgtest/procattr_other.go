//go:build unix && !linux

package pgtest

import "syscall"

// sysProcAttr: outside Linux there is no death signal; the server ends
// with Stop (or the test's cleanup).
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}
