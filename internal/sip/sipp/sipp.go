// Package sipp runs sipp (Debian's sip-tester) with the SIP edge's
// scenarios, embedded here: a subscriber registering with digest, one
// calling another, and one answering. It is the edge's load generator
// (convene bench sip) and the terminals of its process-level tests.
//
// It imports nothing of Convene's.
package sipp

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

//go:embed scenarios/*.xml
var scenarios embed.FS

// The scenarios.
const (
	// Register: each call registers the user of its injection line
	// (Credentials: user;[authentication ...]) with digest, for -key
	// expires seconds.
	Register = "register"
	// UAC: each call calls, with digest, from the injection line's
	// caller (Credentials, then ;called) to its called user, holds for
	// Options.Pause and hangs up. Response time 1 is from the first
	// INVITE to its 200.
	UAC = "uac"
	// UAS: answers every call to Options.Service.
	UAS = "uas"
)

// Credentials are the first two fields of an injection line: the user,
// and its digest credentials as sipp reads them from a file.
func Credentials(user, password string) string {
	return user + ";[authentication username=" + user + " password=" + password + "]"
}

// ErrNotInstalled: no sipp on the PATH.
var ErrNotInstalled = errors.New("sipp is not installed: install Debian's sip-tester (scripts/install-deps.sh)")

// Bin is the sipp binary, or ErrNotInstalled.
func Bin() (string, error) {
	p, err := exec.LookPath("sipp")
	if err != nil {
		return "", ErrNotInstalled
	}
	return p, nil
}

// Options say what one sipp process runs.
type Options struct {
	Scenario string // Register, UAC or UAS
	// Target is the SIP node (host:port); none for a UAS.
	Target string
	// Port is the local port; 0 takes a free one.
	Port int
	// Service is -s: the user a UAS answers as.
	Service string
	// Lines are the injection file's lines (fields separated by ';'),
	// taken in turn by the calls.
	Lines []string
	// Keys are -key values (expires for Register).
	Keys map[string]string
	// Calls is -m, the calls to make (0: a UAS runs until stopped, a
	// client makes one).
	Calls int
	// Rate is the calls started per second (-r); 0 is sipp's default
	// (10/s).
	Rate float64
	// Limit bounds the calls in progress (-l); 0: sipp's default.
	Limit int
	// Pause is how long a UAC call holds before its BYE (-d).
	Pause time.Duration
	// TCP runs over TCP (one connection) rather than UDP.
	TCP bool
	// Timeout ends the run (-timeout), failing it; 0: no limit.
	Timeout time.Duration
	// Dir is where sipp writes its files; "" a new temporary directory,
	// removed by Wait.
	Dir string
}

// Run is a sipp process.
type Run struct {
	opts    Options
	dir     string
	tempDir bool
	cmd     *exec.Cmd
	out     bytes.Buffer
	start   time.Time
	done    chan struct{}
	err     error
	once    sync.Once
	// Port is the local port it runs on.
	Port int
}

// Result is what a finished run reports.
type Result struct {
	// Run is the run it is the result of.
	Run                *Run
	Successful, Failed int
	// RTT are the response times of the calls (UAC: first INVITE to
	// 200), one per successful call.
	RTT []time.Duration
	// Elapsed is the run's time from start to exit.
	Elapsed time.Duration
}

// FreePort is a UDP and TCP port free on loopback now.
func FreePort() (int, error) {
	for range 20 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := u.LocalAddr().(*net.UDPAddr).Port
		t, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		u.Close()
		if err == nil {
			t.Close()
			return p, nil
		}
	}
	return 0, errors.New("sipp: no port free on both UDP and TCP")
}

// Start starts sipp.
func Start(o Options) (*Run, error) {
	bin, err := Bin()
	if err != nil {
		return nil, err
	}
	r := &Run{opts: o, dir: o.Dir, done: make(chan struct{})}
	if r.dir == "" {
		if r.dir, err = os.MkdirTemp("", "sipp-"+o.Scenario+"-"); err != nil {
			return nil, err
		}
		r.tempDir = true
	}
	data, err := scenarios.ReadFile("scenarios/" + o.Scenario + ".xml")
	if err != nil {
		return nil, fmt.Errorf("sipp: no scenario %q", o.Scenario)
	}
	sf := filepath.Join(r.dir, o.Scenario+".xml")
	if err := os.WriteFile(sf, data, 0o600); err != nil {
		return nil, err
	}
	if o.Port == 0 {
		if o.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	r.Port = o.Port
	args := []string{"-sf", sf, "-i", "127.0.0.1", "-p", strconv.Itoa(o.Port), "-nostdin",
		"-trace_err", "-trace_stat", "-stf", filepath.Join(r.dir, "stat.csv"), "-fd", "1",
		"-max_recv_loops", "1000", "-max_sched_loops", "1000", "-buff_size", "4194304",
		// A loaded machine delays sipp's timer: that is no failure.
		"-watchdog_minor_threshold", "100000", "-watchdog_major_threshold", "100000"}
	if o.Target != "" {
		args = append([]string{o.Target}, args...)
	}
	if os.Getenv("SIPP_TRACE") != "" {
		args = append(args, "-trace_msg")
	}
	if o.Scenario == UAC {
		args = append(args, "-trace_rtt", "-rtt_freq", "1")
	}
	if o.TCP {
		args = append(args, "-t", "t1")
	}
	if o.Service != "" {
		args = append(args, "-s", o.Service)
	}
	keys := make([]string, 0, len(o.Keys))
	for k := range o.Keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-key", k, o.Keys[k])
	}
	if len(o.Lines) > 0 {
		f := filepath.Join(r.dir, "inject.csv")
		if err := os.WriteFile(f, []byte("SEQUENTIAL\n"+strings.Join(o.Lines, "\n")+"\n"), 0o600); err != nil {
			return nil, err
		}
		args = append(args, "-inf", f)
	}
	switch {
	case o.Calls > 0:
		args = append(args, "-m", strconv.Itoa(o.Calls))
	case o.Scenario != UAS:
		args = append(args, "-m", "1")
	}
	if o.Rate > 0 {
		args = append(args, "-r", strconv.FormatFloat(o.Rate, 'f', -1, 64))
	}
	if o.Limit > 0 {
		args = append(args, "-l", strconv.Itoa(o.Limit))
	}
	if o.Pause > 0 {
		args = append(args, "-d", strconv.FormatInt(o.Pause.Milliseconds(), 10))
	}
	if o.Timeout > 0 {
		args = append(args, "-timeout", strconv.Itoa(int(o.Timeout.Seconds()+0.999))+"s", "-timeout_error")
	}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Dir = r.dir
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.start = time.Now()
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

// Stop ends the run (a UAS that answers until stopped).
func (r *Run) Stop() {
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Signal(syscall.SIGUSR1) // sipp's soft exit
		select {
		case <-r.done:
		case <-time.After(3 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	}
}

// CallIDs are the Call-IDs of the first n calls of the run: sipp's own,
// <call number>-<pid>@<local address>.
func (r *Run) CallIDs(n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("%d-%d@127.0.0.1", i+1, r.cmd.Process.Pid)
	}
	return out
}

// Done is closed when the process has exited.
func (r *Run) Done() <-chan struct{} { return r.done }

// Wait waits for the run to end (or ctx, which kills it) and reads its
// result. A run with a failed call returns its result with an error that
// quotes sipp's own account of the failures.
func (r *Run) Wait(ctx context.Context) (Result, error) {
	select {
	case <-r.done:
	case <-ctx.Done():
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	res := Result{Run: r, Elapsed: time.Since(r.start)}
	res.Successful, res.Failed = r.stats()
	res.RTT = r.rtts()
	err := r.err
	if err == nil && res.Failed > 0 {
		err = fmt.Errorf("%d calls failed", res.Failed)
	}
	if err != nil {
		err = fmt.Errorf("sipp %s (port %d): %w\n%s", r.opts.Scenario, r.Port, err, r.Logs())
	}
	r.once.Do(func() {
		if r.tempDir && os.Getenv("SIPP_TRACE") == "" {
			_ = os.RemoveAll(r.dir)
		}
	})
	return res, err
}

// stats reads the last line of the statistics file: successful and
// failed calls.
func (r *Run) stats() (ok, failed int) {
	data, err := os.ReadFile(filepath.Join(r.dir, "stat.csv"))
	if err != nil {
		return 0, 0
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 2 {
		return 0, 0
	}
	head := strings.Split(lines[0], ";")
	last := strings.Split(lines[len(lines)-1], ";")
	for i, h := range head {
		if i >= len(last) {
			break
		}
		v, _ := strconv.Atoi(strings.TrimSpace(last[i]))
		switch h {
		case "SuccessfulCall(C)":
			ok = v
		case "FailedCall(C)":
			failed = v
		}
	}
	return ok, failed
}

// rtts reads the response times sipp traced: lines
// "date_ms;response_time_ms;rtd_no" (whole milliseconds).
func (r *Run) rtts() []time.Duration {
	files, _ := filepath.Glob(filepath.Join(r.dir, "*_rtt.csv"))
	var out []time.Duration
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Split(sc.Text(), ";")
			if len(fields) < 3 {
				continue
			}
			ms, err := strconv.ParseFloat(strings.TrimSpace(fields[1]), 64)
			if err != nil {
				continue
			}
			out = append(out, time.Duration(ms*float64(time.Millisecond)))
		}
		fh.Close()
	}
	return out
}

// Logs are what the run printed and the tail of its error trace.
func (r *Run) Logs() string {
	var b strings.Builder
	b.WriteString(tail(r.out.String(), 2000))
	files, _ := filepath.Glob(filepath.Join(r.dir, "*_errors.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "\n--- %s\n%s", filepath.Base(f), tail(string(data), 4000))
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
