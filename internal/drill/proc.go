package drill

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process of the drill: a convene host or nats-server.
// It can be killed (SIGKILL, a crash), stopped (SIGTERM, a clean stop
// with a deadline) and started again with the same command line. Its
// output goes to a log file of its own, appended across restarts, whose
// tail a failure shows.
type proc struct {
	name string
	bin  string
	args []string
	log  string
	env  []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited and was waited for
	starts int
}

func newProc(name, logPath, bin string, args ...string) *proc {
	return &proc{name: name, bin: bin, args: args, log: logPath}
}

// start runs the process. On Linux it dies with the drill, however the
// drill ends (sysProcAttr).
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is already running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: open its log: %w", p.name, err)
	}
	defer logf.Close()
	p.starts++
	fmt.Fprintf(logf, "\n=== drill: start %d of %s at %s: %s %s\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), p.env...)
	cmd.SysProcAttr = sysProcAttr()
	exited := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// The death signal is tied to the thread that started the child:
		// this goroutine keeps that thread for as long as the child lives.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd, p.exited = cmd, exited
	return nil
}

// pid is the running process's id, 0 when it is not running.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// alive reports whether the process runs (it was started and has not
// exited).
func (p *proc) alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill ends the process with SIGKILL, as a crash, and waits for it.
func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.cmd = nil
}

// errStopTimeout means a process did not end within its grace after
// SIGTERM and was killed.
var errStopTimeout = errors.New("did not stop in time after SIGTERM and was killed")

// stop asks the process to end (SIGTERM) and waits up to grace for it,
// then kills it. It answers the process's exit when it was not clean.
func (p *proc) stop(grace time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	defer func() { p.cmd = nil }()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("%s %w (%s)", p.name, errStopTimeout, grace)
	}
	if st := p.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("%s ended with %s after SIGTERM", p.name, st)
	}
	return nil
}

// exitedEarly answers an error when the process is not running: it ended
// by itself (or never started).
func (p *proc) exitedEarly() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s is not running", p.name)
	}
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited by itself (%s); the end of its log:\n%s", p.name, p.cmd.ProcessState, tail(p.log, 30))
	default:
		return nil
	}
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
