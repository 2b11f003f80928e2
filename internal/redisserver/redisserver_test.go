package redisserver

import (
	"errors"
	"net"
	"testing"

	"github.com/convene/convene/internal/childproc"
)

func startT(t *testing.T, opts Options) *Server {
	t.Helper()
	if _, err := Binary(); err != nil {
		t.Skip(err)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	return s
}

// answeringPID is the process id the server at s's address reports.
func answeringPID(t *testing.T, s *Server) int {
	t.Helper()
	pid, ok := serverPID(s.Addr())
	if !ok {
		t.Fatalf("nothing answers INFO server on %s", s.Addr())
	}
	return pid
}

func TestStartedServerIsItsOwnProcess(t *testing.T) {
	s := startT(t, Options{})
	if got := answeringPID(t, s); got != s.PID() || got == 0 {
		t.Fatalf("process %d answers on %s; started %d", got, s.Addr(), s.PID())
	}
}

// A port another server took between the pick and the start is not
// mistaken for the new server: Start tries another one.
func TestStartSkipsAPortAnotherServerTook(t *testing.T) {
	other := startT(t, Options{})
	tries := 0
	pickPort = func() (int, error) {
		tries++
		if tries == 1 {
			return other.opts.Port, nil
		}
		return childproc.FreePort()
	}
	t.Cleanup(func() { pickPort = childproc.FreePort })
	s := startT(t, Options{})
	if s.opts.Port == other.opts.Port {
		t.Fatalf("started on the other server's port %d", s.opts.Port)
	}
	if tries < 2 {
		t.Fatalf("%d ports tried; the first was taken", tries)
	}
	if got := answeringPID(t, s); got != s.PID() {
		t.Fatalf("process %d answers on %s; started %d", got, s.Addr(), s.PID())
	}
}

// A port given explicitly that another process holds is an error, not a
// server that seems to run.
func TestStartOnATakenPortFails(t *testing.T) {
	if _, err := Binary(); err != nil {
		t.Skip(err)
	}
	cases := []struct {
		name string
		take func(t *testing.T) int
	}{
		{"another redis-server", func(t *testing.T) int { return startT(t, Options{}).opts.Port }},
		{"another listener", func(t *testing.T) int {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l.Addr().(*net.TCPAddr).Port
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port := tc.take(t)
			s, err := Start(Options{Dir: t.TempDir(), Port: port})
			if err == nil {
				s.Kill()
				t.Fatalf("started on taken port %d", port)
			}
			if !errors.Is(err, errPortTaken) {
				t.Fatalf("start on taken port %d: %v; want it said taken", port, err)
			}
		})
	}
}

func TestRestartKeepsThePortWithANewProcess(t *testing.T) {
	s := startT(t, Options{AOF: true})
	port, pid := s.opts.Port, s.PID()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.opts.Port != port || s.PID() == pid {
		t.Fatalf("after restart port %d pid %d; before %d, %d", s.opts.Port, s.PID(), port, pid)
	}
	if got := answeringPID(t, s); got != s.PID() {
		t.Fatalf("process %d answers on %s after restart; started %d", got, s.Addr(), s.PID())
	}
	s.Kill()
	if _, ok := serverPID(s.Addr()); ok {
		t.Fatal("a killed server still answers")
	}
	if s.PID() != 0 {
		t.Fatalf("pid %d after Kill", s.PID())
	}
}
