//go:build linux

package drill

import "syscall"

// sysProcAttr has the kernel kill a child when the thread that started it
// ends, which proc.start ties to the life of the child's waiter in this
// process: a drill that dies, however it dies, leaves no process behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
