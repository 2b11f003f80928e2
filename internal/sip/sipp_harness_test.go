package sip

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sippBin finds sipp (Debian's sip-tester, installed by
// scripts/install-deps.sh). Without it the test is skipped, except in CI,
// where it must be there.
func sippBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		t.Fatal("sipp is not installed: run scripts/install-deps.sh (Debian package sip-tester)")
	}
	return p
}

// freePort is a UDP port free on loopback now.
func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// sipp is one sipp process running a scenario of testdata/.
type sipp struct {
	t        *testing.T
	scenario string
	dir      string
	port     int
	cmd      *exec.Cmd
	out      bytes.Buffer
	done     chan error
}

// sippOpts are a run's options besides the scenario.
type sippOpts struct {
	service string            // -s
	user    string            // -au (and the caller key)
	pass    string            // -ap
	port    int               // local port; 0 picks one
	keys    map[string]string // -key
	inf     []string          // lines of an injection file (after SEQUENTIAL)
	pause   time.Duration     // -d
	tcp     bool
}

// startSipp runs a scenario against target (host:port) in the background.
func startSipp(t *testing.T, scenario, target string, o sippOpts) *sipp {
	t.Helper()
	bin := sippBin(t)
	path, err := filepath.Abs(filepath.Join("testdata", scenario))
	if err != nil {
		t.Fatal(err)
	}
	if o.port == 0 {
		o.port = freePort(t)
	}
	s := &sipp{t: t, scenario: scenario, dir: t.TempDir(), port: o.port, done: make(chan error, 1)}
	args := []string{"-sf", path, target, "-i", "127.0.0.1", "-p", strconv.Itoa(o.port), "-m", "1", "-nostdin",
		"-timeout", "40s", "-timeout_error", "-trace_err", "-trace_msg", "-max_recv_loops", "1000"}
	if o.tcp {
		args = append(args, "-t", "t1")
	}
	if o.service != "" {
		args = append(args, "-s", o.service)
	}
	if o.user != "" {
		args = append(args, "-au", o.user, "-ap", o.pass, "-key", "caller", o.user)
	}
	for k, v := range o.keys {
		args = append(args, "-key", k, v)
	}
	if o.pause > 0 {
		args = append(args, "-d", strconv.Itoa(int(o.pause/time.Millisecond)))
	}
	if len(o.inf) > 0 {
		f := filepath.Join(s.dir, "inject.csv")
		if err := os.WriteFile(f, []byte("SEQUENTIAL\n"+strings.Join(o.inf, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-inf", f)
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
		}
	})
	return s
}

// wait waits for the run and fails the test unless it passed.
func (s *sipp) wait() {
	s.t.Helper()
	var err error
	select {
	case err = <-s.done:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		err = fmt.Errorf("sipp still running after a minute")
	}
	if err != nil {
		s.t.Fatalf("sipp %s failed: %v\n%s", s.scenario, err, s.logs())
	}
}

// logs are what the run left: its error and message traces.
func (s *sipp) logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(s.dir, "*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if len(data) > 8000 {
			data = data[len(data)-8000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", filepath.Base(f), data)
	}
	return b.String()
}

// run runs a scenario to its end and fails the test unless it passed.
func runSipp(t *testing.T, scenario, target string, o sippOpts) {
	t.Helper()
	startSipp(t, scenario, target, o).wait()
}
