//go:build !linux

package redisserver

import "syscall"

// sysProcAttr: outside Linux there is no death signal; the server ends
// with Kill (or the test's cleanup).
func sysProcAttr() *syscall.SysProcAttr { return nil }
