//go:build linux

package redisserver

import "syscall"

// sysProcAttr has the kernel kill redis-server when the thread that
// started it ends, which start ties to the life of the server's waiter in
// this process: a process that dies, however it dies, leaves no server.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
