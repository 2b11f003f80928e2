package drill

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
)

// binary is the convene binary TestMain builds for the drills to run.
var binary string

func TestMain(m *testing.M) {
	code := func() int {
		if _, err := NATSServerBinary(); err != nil {
			return m.Run() // the end-to-end tests skip
		}
		dir, err := os.MkdirTemp("", "convene-drill-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "convene")
		gocmd, err := exec.LookPath("go")
		if err != nil {
			gocmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		build := exec.Command(gocmd, "build", "-o", binary, "github.com/convene/convene/cmd/convene")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build convene: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// needBinary skips a test that runs processes when nats-server is missing.
func needBinary(t *testing.T) string {
	t.Helper()
	if _, err := NATSServerBinary(); err != nil {
		t.Fatalf("%v: make test installs it (scripts/install-deps.sh)", err)
	}
	if testing.Short() {
		t.Skip("the drills start a dozen processes: not in -short")
	}
	return binary
}

// syncBuffer is the drill's output, written by one goroutine at a time.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// checkFinal asserts that exactly the conferences that had to run do, by
// identity, each once on a live node, with nothing waiting.
func checkFinal(t *testing.T, m Measure, atLeast int) {
	t.Helper()
	if len(m.Want) < atLeast {
		t.Fatalf("%d conferences had to run at the end; the drill booked at least %d", len(m.Want), atLeast)
	}
	if !maps.Equal(m.Running, m.Want) {
		t.Errorf("running at the end:\n%v\nwant exactly:\n%v", m.Running, m.Want)
	}
	if len(m.Waiting) > 0 {
		t.Errorf("left waiting: %v", m.Waiting)
	}
	for e := range m.Want {
		if m.Copies[e] != 1 {
			t.Errorf("conference %s runs on %d live nodes", e, m.Copies[e])
		}
	}
	if m.Audit != "" {
		t.Errorf("audit: %s", m.Audit)
	}
}

func TestProcessesDrill(t *testing.T) {
	bin := needBinary(t)
	out := &syncBuffer{}
	res, err := Processes(context.Background(), Options{Binary: bin, Conferences: 12, Nodes: 3, Out: out, Dir: t.TempDir()})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the drill said:\n%s", out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Passed() {
		t.Fatalf("the drill failed:\n%s", strings.Join(res.Failures, "\n"))
	}
	var steps []string
	for _, s := range res.Steps {
		steps = append(steps, s.Name)
		if s.Counts != (Counts{}) {
			t.Errorf("step %s: %+v", s.Name, s.Counts)
		}
	}
	want := []string{"booked", "media node killed", "active scheduler killed", "RMS killed", "PMS killed", "registry killed",
		"API killed", "nats-server killed", "redis-server killed", "end"}
	if !slices.Equal(steps, want) {
		t.Errorf("steps %v, want %v", steps, want)
	}
	// The twelve booked and one more after each of the eight faults.
	checkFinal(t, res.Final, 12+8)
	var printed bytes.Buffer
	res.Print(&printed)
	if !strings.Contains(printed.String(), "drill passed") || !strings.Contains(printed.String(), "redis-server killed") {
		t.Errorf("the result prints:\n%s", printed.String())
	}
}

func TestRollingDrill(t *testing.T) {
	bin := needBinary(t)
	out := &syncBuffer{}
	res, err := Rolling(context.Background(), RollingOptions{
		Options: Options{Binary: bin, Conferences: 10, Nodes: 2, Out: out, Dir: t.TempDir()},
		Rate:    10, Window: 8,
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the drill said:\n%s", out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Passed() {
		t.Fatalf("the drill failed:\n%s", strings.Join(res.Failures, "\n"))
	}
	restarted := 0
	for _, s := range res.Steps {
		if strings.HasPrefix(s.Name, "restarted ") {
			restarted++
		}
	}
	// Two of each of six services and two node hosts.
	if restarted != 14 {
		t.Errorf("%d processes restarted, want 14: %v", restarted, res.Steps)
	}
	checkFinal(t, res.Final, 10)
	if len(res.Figures) != 1 || !strings.Contains(res.Figures[0], " 0 failed") {
		t.Errorf("figures %q", res.Figures)
	}
}

// The drill's view is the platform's, not its own bookkeeping: a
// conference ended behind its back is lost to it.
func TestDrillSeesAConferenceEndedBehindItsBack(t *testing.T) {
	bin := needBinary(t)
	ctx := context.Background()
	lay := layout{apis: 1, schedulers: 1, services: 1, nodes: 1, nodeHosts: 1}
	d, err := deploy(ctx, t.TempDir(), bin, lay, 10, "warn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	r := &run{opts: Options{Out: &bytes.Buffer{}, SettleTimeout: 20 * time.Second}, d: d, start: time.Now()}
	api := apiclient.New("http://"+d.apiAddrs()[0], apiToken)
	if err := book(ctx, api, 3); err != nil {
		t.Fatal(err)
	}
	m, ok := r.settle(ctx, "booked", nil)
	if !ok || len(m.Running) != 3 {
		t.Fatalf("booked 3, settled %v with %v running: %q", ok, m.Running, Judge(m))
	}
	want := m.Running
	gone := sortedKeys(want)[0]
	if err := api.EndConference(ctx, gone); err != nil {
		t.Fatal(err)
	}
	r.opts.SettleTimeout = time.Second
	m, ok = r.settle(ctx, "ended behind its back", want)
	if ok {
		t.Fatal("the drill settled with a conference gone")
	}
	if c := m.Count(); c != (Counts{Lost: 1}) {
		t.Errorf("counts %+v, want one lost", c)
	}
	if problems := Judge(m); len(problems) != 1 || !strings.Contains(problems[0], gone+" was lost") {
		t.Errorf("judged %q; want %s lost", problems, gone)
	}
}
