//go:build !linux

package drill

import "syscall"

// sysProcAttr: outside Linux there is no death signal; the children end
// with the drill's own cleanup.
func sysProcAttr() *syscall.SysProcAttr { return nil }
