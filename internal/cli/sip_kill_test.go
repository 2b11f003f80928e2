package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/redisserver"
	"github.com/convene/convene/internal/sip"
	"github.com/convene/convene/internal/sip/sipp"
	"github.com/convene/convene/internal/testkit"
)

// sipProcess is `convene sip` running in a process of its own.
type sipProcess struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

func (p *sipProcess) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.Write(b)
}

func (p *sipProcess) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// startSIPProcess runs a SIP node named name as `convene sip` in a
// process of its own, and waits until it serves.
func startSIPProcess(t *testing.T, name, redisURL, recordsURL, dir string) *sipProcess {
	t.Helper()
	port, err := sipp.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &sipProcess{addr: "127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "sip", "--nats", "none", "--redis", redisURL, "--records", recordsURL,
		"--sip-listen", p.addr, "--account-listen", "none", "--name", name,
		"--data-dir", filepath.Join(dir, name), "--log-level", "warn",
		"--digest", "MD5,SHA-256") // Debian's sipp answers only the first challenge, and only MD5
	p.cmd.Env = append(os.Environ(), "CONVENE_TEST_MAIN=1")
	p.cmd.Stderr = p
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			_, _ = fmt.Fprintln(p, sc.Text())
			if strings.Contains(sc.Text(), "is serving") {
				close(serving)
			}
		}
	}()
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("--- %s:\n%s", name, p.log())
		}
	})
	select {
	case <-serving:
	case <-p.done:
		t.Fatalf("%s exited:\n%s", name, p.log())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s is not serving after a minute:\n%s", name, p.log())
	}
	return p
}

// callsOf counts the call records of a caller: ended and connected, and
// the distinct Call-IDs among all of them.
func callsOf(t *testing.T, db *records.DB, caller string) (connected, distinct int) {
	t.Helper()
	ids := map[string]bool{}
	calls, err := db.CallRecords(context.Background(), records.CallFilter{Caller: records.Match{Value: caller}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		if c.Connected && !c.End.IsZero() {
			connected++
		}
		ids[c.CallID] = true
	}
	return connected, len(ids)
}

// Two SIP nodes in processes of their own share a store and a records
// database; one is killed (SIGKILL) while calls go through both: the
// users registered through it stay reachable through the other, new
// calls through the other succeed, and every call that completed has its
// record, once.
func TestSIPNodeKilledMidLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and runs sipp for half a minute")
	}
	if _, err := sipp.Bin(); err != nil {
		t.Fatalf("%v: make test installs it (scripts/install-deps.sh)", err)
	}
	dir := t.TempDir()
	if _, err := redisserver.Binary(); err != nil {
		t.Fatalf("%v: make test installs it (scripts/install-deps.sh)", err)
	}
	rs, err := redisserver.Start(redisserver.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Kill)
	recordsURL := "sqlite://" + filepath.Join(dir, "records.db")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db, err := records.Open(ctx, recordsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	users := []string{"1001", "1002", "1003", "2001", "2002"}
	for _, u := range users {
		s, err := sip.NewSubscriber(u, "pw-"+u, config.DefaultSIPDomain)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.PutSIPSubscriber(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	a := startSIPProcess(t, "sip-a", rs.URL(), recordsURL, dir)
	b := startSIPProcess(t, "sip-b", rs.URL(), recordsURL, dir)

	// Callees 2001 and 2002 register through A, and answer on the ports
	// they registered.
	uas := map[string]*sipp.Run{}
	for _, u := range []string{"2001", "2002"} {
		reg, err := sipp.Start(sipp.Options{Scenario: sipp.Register, Target: a.addr, Lines: []string{sipp.Credentials(u, "pw-"+u)},
			Keys: map[string]string{"expires": "3600"}, Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if uas[u], err = sipp.Start(sipp.Options{Scenario: sipp.UAS, Port: reg.Port, Service: u}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(uas[u].Stop)
	}
	call := func(node *sipProcess, caller, called string, calls int) *sipp.Run {
		lines := make([]string, calls)
		for i := range lines {
			lines[i] = sipp.Credentials(caller, "pw-"+caller) + ";" + called
		}
		r, err := sipp.Start(sipp.Options{Scenario: sipp.UAC, Target: node.addr, Lines: lines, Calls: calls, Rate: 40,
			Pause: 300 * time.Millisecond, Timeout: 2 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Stop)
		return r
	}
	// Load through both nodes: 1001 through A, 1002 through B.
	loadA := call(a, "1001", "2001", 100000)
	loadB := call(b, "1002", "2002", 200)
	testkit.AwaitWithin(t, 60*time.Second, "calls completed through A", func() bool {
		n, _ := callsOf(t, db, "1001")
		return n >= 20
	})
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	loadA.Stop()
	beforeKill, _ := loadA.Wait(ctx) // calls in flight through A fail: expected
	t.Logf("through A before its death: %d calls completed, %d failed", beforeKill.Successful, beforeKill.Failed)

	// New calls through B reach 2001, registered through the dead node.
	after := call(b, "1003", "2001", 60)
	resAfter, err := after.Wait(ctx)
	if err != nil {
		t.Fatalf("calls through B after A's death: %v", err)
	}
	resB, err := loadB.Wait(ctx)
	if err != nil {
		t.Fatalf("the load through B: %v", err)
	}
	if resAfter.Successful != 60 || resB.Successful != 200 {
		t.Fatalf("through B: %d of 60 and %d of 200 calls completed", resAfter.Successful, resB.Successful)
	}

	// Every completed call has its record, once: those A ended and had
	// not written when it died are reported again by B.
	for _, c := range []struct {
		caller string
		want   int
	}{{"1003", 60}, {"1002", 200}, {"1001", beforeKill.Successful}} {
		testkit.AwaitWithin(t, 60*time.Second, "the records of "+c.caller+"'s calls", func() bool {
			n, _ := callsOf(t, db, c.caller)
			return n >= c.want
		})
		n, distinct := callsOf(t, db, c.caller)
		if c.caller != "1001" && (n != c.want || distinct != c.want) {
			t.Errorf("caller %s: %d connected records of %d calls (%d Call-IDs), want %d", c.caller, n, c.want, distinct, c.want)
		}
	}
}
