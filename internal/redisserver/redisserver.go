// Package redisserver runs a real redis-server process on loopback, in its
// own directory and port: for the benchmark, the drill and the tests
// (through internal/redistest). `make test` installs redis-server when it
// is missing.
//
// redis-server cannot pick its own port, so Start picks a free one and then
// checks that the server answering there is the process it started (its
// process_id in INFO server); when another process took the port first, it
// tries another. On Linux the server dies with the process that started it,
// however that process ends (a test binary killed by its timeout too).
package redisserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// ErrNotInstalled means no redis-server binary was found.
var ErrNotInstalled = errors.New("redis-server is not installed: `make test` installs it (apt-get install redis-server)")

// errPortTaken means another process holds the port or answers on it.
var errPortTaken = errors.New("the port is taken by another process")

// startAttempts bounds the ports Start tries when it picks them itself.
const startAttempts = 5

// startTimeout bounds the wait for a started server to answer.
const startTimeout = 10 * time.Second

// Options tune the server.
type Options struct {
	// Dir holds its files and log; required.
	Dir string
	// Port to listen on; 0 picks a free one.
	Port int
	// AOF turns on the append-only file with fsync every write, so a
	// restart keeps every acknowledged write.
	AOF bool
}

// Server is a running redis-server.
type Server struct {
	opts   Options
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited and was waited for
}

// Binary finds redis-server.
func Binary() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNotInstalled
}

// Start starts a server and waits until it answers as the process it
// started. With Port 0 it picks a free port, and another one when a
// different process takes it first.
func Start(opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("redisserver: a directory is required")
	}
	s := &Server{opts: opts}
	if opts.Port != 0 {
		if err := s.start(); err != nil {
			return nil, err
		}
		return s, nil
	}
	var last error
	for range startAttempts {
		p, err := pickPort()
		if err != nil {
			return nil, err
		}
		s.opts.Port = p
		last = s.start()
		if last == nil {
			return s, nil
		}
		if !errors.Is(last, errPortTaken) {
			return nil, last
		}
	}
	return nil, fmt.Errorf("redisserver: %d free ports were each taken before redis-server could listen: %w", startAttempts, last)
}

// Addr is 127.0.0.1:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.opts.Port) }

// URL is redis://127.0.0.1:port.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// PID is the server's process id, 0 when it is not running.
func (s *Server) PID() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill stops the server with SIGKILL, as a crash, and waits for it.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart kills the server and starts it again on the same port and
// directory; with AOF its data survives. It fails, rather than leave
// clients talking to a stranger, when another process took the port.
func (s *Server) Restart() error {
	s.Kill()
	return s.start()
}

func (s *Server) start() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	args := []string{
		"--port", strconv.Itoa(s.opts.Port), "--bind", "127.0.0.1", "--dir", s.opts.Dir,
		"--save", "", "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning",
	}
	if s.opts.AOF {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	logPath := filepath.Join(s.opts.Dir, "redis.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
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
		return fmt.Errorf("start redis-server: %w", err)
	}
	s.cmd, s.exited = cmd, exited
	pid := cmd.Process.Pid
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			s.cmd = nil
			log := logSince(logPath, logStart)
			if strings.Contains(log, "Address already in use") {
				return fmt.Errorf("redis-server on %s: %w", s.Addr(), errPortTaken)
			}
			return fmt.Errorf("redis-server on %s exited at start; log:\n%s", s.Addr(), log)
		default:
		}
		if answering, ok := serverPID(s.Addr()); ok {
			if answering == pid {
				return nil
			}
			s.Kill()
			return fmt.Errorf("redis-server on %s: process %d answers there, not the one started (%d): %w", s.Addr(), answering, pid, errPortTaken)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("redis-server on %s did not answer within %s; log:\n%s", s.Addr(), startTimeout, logSince(logPath, logStart))
}

// logSince is the server log from offset on.
func logSince(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}

// serverPID asks the Redis server at addr for its process id (INFO
// server); ok is false when nothing answers as Redis does.
func serverPID(addr string) (pid int, ok bool) {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return 0, false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return 0, false
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil || n < 0 {
		return 0, false
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, found := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); found {
			pid, err := strconv.Atoi(v)
			return pid, err == nil
		}
	}
	return 0, false
}

// pickPort proposes a port to try; tests replace it.
var pickPort = freePort

// freePort is a port nothing listened on a moment ago: a candidate only,
// which start verifies.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
