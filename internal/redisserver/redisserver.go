// Package redisserver runs a real redis-server process on loopback, in its
// own directory and port: for the benchmark, the drill and the tests
// (through internal/redistest). `make test` installs redis-server when it
// is missing.
//
// redis-server cannot pick its own port, so Start picks a free one and then
// checks that the server answering there is the process it started (its
// process_id in INFO server); when another process took the port first, it
// tries another. On Linux the server dies with the process that started it,
// however that process ends (a test binary killed by its timeout too):
// internal/childproc starts it.
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
	"strconv"
	"strings"
	"time"

	"github.com/convene/convene/internal/childproc"
)

// ErrNotInstalled means no redis-server binary was found.
var ErrNotInstalled = errors.New("redis-server is not installed: `make test` installs it (apt-get install redis-server)")

// errPortTaken means another process holds the port or answers on it.
var errPortTaken = childproc.ErrPortTaken

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
	opts Options
	proc *childproc.Proc // nil when not running
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
	err := childproc.OnFreePort(startAttempts, pickPort, func(port int) error {
		s.opts.Port = port
		return s.start()
	})
	if err != nil {
		return nil, fmt.Errorf("redisserver: %w", err)
	}
	return s, nil
}

// Addr is 127.0.0.1:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.opts.Port) }

// URL is redis://127.0.0.1:port.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// PID is the server's process id, 0 when it is not running.
func (s *Server) PID() int {
	if s.proc == nil {
		return 0
	}
	return s.proc.PID()
}

// Kill stops the server with SIGKILL, as a crash, and waits for it.
func (s *Server) Kill() {
	if s.proc == nil {
		return
	}
	s.proc.Kill()
	s.proc = nil
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
	p, err := childproc.Start(childproc.Spec{
		Name: "redis-server on " + s.Addr(), Path: bin, Args: args,
		Log: filepath.Join(s.opts.Dir, "redis.log"), PortTaken: []string{"Address already in use"},
	})
	if err != nil {
		return err
	}
	err = p.Wait(startTimeout, func() error {
		answering, ok := serverPID(s.Addr())
		switch {
		case !ok:
			return errors.New("nothing answers INFO server yet")
		case answering != p.PID():
			return fmt.Errorf("process %d answers there, not the one started (%d): %w", answering, p.PID(), errPortTaken)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.proc = p
	return nil
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
var pickPort = childproc.FreePort
