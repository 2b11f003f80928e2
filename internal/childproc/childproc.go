// Package childproc starts a server program as a child of this process:
// its output appended to a log file, on Linux killed by the kernel when
// the process that started it dies, however that dies (a test binary
// killed by its timeout too). Start launches it, Proc.Wait polls until it
// answers as the process started, and OnFreePort retries on another
// loopback port when a stranger took the one picked. redis-server
// (internal/redisserver) and PostgreSQL (internal/pgtest) are started
// through it.
//
// The package imports no Convene package.
package childproc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// ErrPortTaken means another process held the port when the child tried
// to listen, or answers on it.
var ErrPortTaken = errors.New("the port is taken by another process")

// pollEvery is the pause between two readiness checks.
const pollEvery = 20 * time.Millisecond

// Spec says what to run.
type Spec struct {
	// Name is what errors call the child ("redis-server on 127.0.0.1:6379").
	Name string
	// Path and Args are the program and its arguments.
	Path string
	Args []string
	// Dir is its working directory; Env its environment (nil: this
	// process's).
	Dir string
	Env []string
	// Log is the file its output is appended to; required.
	Log string
	// Cred runs it as another user; nil: this process's user.
	Cred *syscall.Credential
	// Group puts it in a process group of its own, so that Kill ends the
	// processes it started too.
	Group bool
	// PortTaken are phrases of its log that mean it could not listen
	// because the port is taken; Wait then answers ErrPortTaken.
	PortTaken []string
}

// Proc is a running child.
type Proc struct {
	spec     Spec
	cmd      *exec.Cmd
	exited   chan struct{} // closed once cmd has exited and was waited for
	logStart int64         // the log's size at start: Log reads from there
}

// Start launches the child and returns at once; Wait tells when it
// answers.
func Start(spec Spec) (*Proc, error) {
	if spec.Log == "" {
		return nil, fmt.Errorf("childproc: %s: a log file is required", spec.Name)
	}
	logf, err := os.OpenFile(spec.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("childproc: %w", err)
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir, cmd.Env = spec.Dir, spec.Env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr(spec.Cred, spec.Group)
	exited := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// The death signal (sysProcAttr) is tied to the thread that
		// started the child, not to the process: this goroutine keeps
		// that thread for as long as the child lives.
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
		return nil, fmt.Errorf("childproc: start %s: %w", spec.Name, err)
	}
	return &Proc{spec: spec, cmd: cmd, exited: exited, logStart: logStart}, nil
}

// PID is the child's process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited is closed once the child has ended.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Log is what the child wrote to its log since it started.
func (p *Proc) Log() string {
	b, err := os.ReadFile(p.spec.Log)
	if err != nil || p.logStart > int64(len(b)) {
		return ""
	}
	return string(b[p.logStart:])
}

// Wait polls ready until it returns nil, and returns nil then. It kills
// the child and returns an error when ready says ErrPortTaken (wrapped),
// when the child exits first (ErrPortTaken when its log says the port was
// taken) or when timeout passes.
func (p *Proc) Wait(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		select {
		case <-p.exited:
			log := p.Log()
			for _, phrase := range p.spec.PortTaken {
				if strings.Contains(log, phrase) {
					return fmt.Errorf("%s: %w", p.spec.Name, ErrPortTaken)
				}
			}
			return fmt.Errorf("%s exited at start; log:\n%s", p.spec.Name, log)
		default:
		}
		last = ready()
		if last == nil {
			return nil
		}
		if errors.Is(last, ErrPortTaken) {
			p.Kill()
			return fmt.Errorf("%s: %w", p.spec.Name, last)
		}
		if time.Now().After(deadline) {
			p.Kill()
			return fmt.Errorf("%s did not answer within %s (last: %w); log:\n%s", p.spec.Name, timeout, last, p.Log())
		}
		time.Sleep(pollEvery)
	}
}

// Kill ends the child (and its process group, with Group) with SIGKILL,
// as a crash, and waits for it. Safe to repeat.
func (p *Proc) Kill() {
	if p.spec.Group {
		_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Stop sends sig and waits for the child to end; one that is still there
// after timeout is killed. Safe to repeat.
func (p *Proc) Stop(sig os.Signal, timeout time.Duration) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.Kill()
	}
}

// FreePort is a loopback port nothing listened on a moment ago: a
// candidate only, which the child's readiness check verifies.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// OnFreePort calls start with ports from pick (FreePort when nil) until
// one start does not refuse with ErrPortTaken, at most attempts times.
func OnFreePort(attempts int, pick func() (int, error), start func(port int) error) error {
	if pick == nil {
		pick = FreePort
	}
	var last error
	for range attempts {
		port, err := pick()
		if err != nil {
			return err
		}
		last = start(port)
		if !errors.Is(last, ErrPortTaken) {
			return last
		}
	}
	return fmt.Errorf("%d free ports were each taken before the server could listen: %w", attempts, last)
}
