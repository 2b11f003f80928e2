package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/records"
)

// recordsAPI serves the call records routes of a host over a SQLite
// records file, with calls generated into it, and returns the API's
// address, the calls' generation and the records service used.
func recordsAPI(t *testing.T, g cdr.GenerateOptions) (string, *cdr.Service) {
	t.Helper()
	dir := t.TempDir()
	f, err := host.Parse("records.yaml", []byte(fmt.Sprintf(`
host: {name: records, data_dir: %q}
infrastructure:
  records: {plugin: convene.records.sql, url: %q}
servers:
  sip-records: {plugin: convene.sip.records}
`, dir, filepath.Join(dir, "records.db"))))
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(f, host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Stop(ctx)
	})
	res, _ := h.Instance("records")
	db := res.(*records.PluginServer).Resource().(*records.DB)
	svc, err := cdr.New(cdr.Options{}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	if g.Count > 0 {
		if _, err := cdr.Generate(ctx, svc, g); err != nil {
			t.Fatal(err)
		}
	}
	api := httptest.NewServer(h.Handler())
	t.Cleanup(api.Close)
	return api.URL, svc
}

func runCdr(t *testing.T, api string, args ...string) (string, string, error) {
	t.Helper()
	cmd := cdrCmd()
	var out, errw bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errw)
	cmd.SetArgs(append(args, "--api", api, "--token", "test-token-0123456789"))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errw.String(), err
}

// `convene cdr query|stats|export` show what the generated calls say.
func TestCdrQueryStatsExport(t *testing.T) {
	now := time.Date(2025, 3, 6, 15, 30, 0, 0, time.UTC)
	g := cdr.GenerateOptions{Count: 300, Days: 2, Seed: 5, Now: now}
	api, _ := recordsAPI(t, g)
	from, to := time.Date(2025, 3, 5, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 6, 0, 0, 0, 0, time.UTC)
	var inDay, videoInDay, secondsInDay int
	for i := range g.Count {
		e := cdr.PlanCall(g, i)
		if e.Start.Before(from) || !e.Start.Before(to) {
			continue
		}
		inDay++
		if e.Type == cdr.Video {
			videoInDay++
		}
		if !e.Answer.IsZero() {
			secondsInDay += int(e.End.Sub(e.Answer).Round(time.Second) / time.Second)
		}
	}
	rng := []string{"--start", from.Format(time.RFC3339), "--end", to.Format(time.RFC3339)}

	out, errw, err := runCdr(t, api, append([]string{"query", "--page-size", "7", "--all"}, rng...)...)
	if err != nil {
		t.Fatalf("query: %v\n%s", err, errw)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != inDay+1 || !strings.HasPrefix(lines[0], "ID") || inDay < 50 {
		t.Fatalf("query --all: %d lines for %d calls\n%s", len(lines), inDay, out)
	}
	out, errw, err = runCdr(t, api, append([]string{"query", "--page-size", "7"}, rng...)...)
	if err != nil || strings.Count(out, "\n") != 8 || !strings.Contains(errw, "more: --page ") {
		t.Fatalf("one page: %v\n%s\n%s", err, out, errw)
	}

	out, errw, err = runCdr(t, api, append([]string{"stats"}, rng...)...)
	if err != nil {
		t.Fatalf("stats: %v\n%s", err, errw)
	}
	var total []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 7 && f[0] == "total" {
			total = f
		}
	}
	if want := []string{"total", fmt.Sprint(inDay), fmt.Sprint(secondsInDay)}; len(total) != 7 || total[1] != want[1] || total[2] != want[2] ||
		total[5] != fmt.Sprint(videoInDay) || strings.Count(out, "\n") != 2+24+1 {
		t.Fatalf("stats: totals %v, want %v with %d video\n%s", total, want, videoInDay, out)
	}

	file := filepath.Join(t.TempDir(), "day.csv")
	if _, errw, err = runCdr(t, api, append([]string{"export", "--out", file, "--type", "video"}, rng...)...); err != nil {
		t.Fatalf("export: %v\n%s", err, errw)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil || len(rows) != videoInDay+1 || rows[0][0] != "id" {
		t.Fatalf("export: %d rows for %d video calls, %v", len(rows), videoInDay, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	if len(entries) != 1 {
		t.Fatalf("export left %d files", len(entries))
	}

	for _, tc := range []struct{ args, want []string }{
		{[]string{"query", "--start", "yesterday"}, []string{"--start"}},
		{[]string{"query", "--connected", "maybe"}, []string{"--connected"}},
		{[]string{"stats", "--type", "fax"}, []string{"BAD_REQUEST", `"type"`}},
	} {
		_, _, err := runCdr(t, api, tc.args...)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %v, want %q", tc.args, err, w)
			}
		}
	}
}

// An export the server cuts short leaves no file at --out, and fails.
func TestCdrExportCutShortLeavesNoFile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(strings.Join(cdr.CSVHeader, ",") + "\nabc,def\n"))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "cut.csv")
	_, _, err := runCdr(t, srv.URL, "export", "--out", file)
	if err == nil {
		t.Fatal("a cut export succeeded")
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	if len(entries) != 0 {
		t.Fatalf("a cut export left %v", entries[0].Name())
	}
}

// `convene calls` lists the live calls; following prints starts,
// answers and ends in order.
func TestCallsFollow(t *testing.T) {
	api, svc := recordsAPI(t, cdr.GenerateOptions{})
	ctx := context.Background()
	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	e := cdr.CallEvent{CallID: "c-1", FromTag: "f", Caller: "8001001", Called: "8002002", Type: cdr.Voice, Node: "sip-a", Start: start}
	if err := svc.CallStarted(ctx, e); err != nil {
		t.Fatal(err)
	}
	cmd := callsCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"--api", api, "--token", "test-token-0123456789"})
	if err := cmd.ExecuteContext(ctx); err != nil || !strings.Contains(out.String(), "8002002") || !strings.Contains(out.String(), "1 calls in progress") {
		t.Fatalf("calls: %v\n%s", err, out.String())
	}

	c := apiclient.New(api, "test-token-0123456789")
	var buf bytes.Buffer
	w := &callWatcher{c: c, out: &buf, seen: map[string]apiclient.CDR{}}
	read := func() []apiclient.CDR {
		l, err := liveCalls(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	w.update(ctx, read()) // c-1 started
	e2 := cdr.CallEvent{CallID: "c-2", FromTag: "f", Caller: "8001002", Called: "8002003", Type: cdr.Video, Node: "sip-a", Start: start.Add(time.Second)}
	if err := svc.CallStarted(ctx, e2); err != nil {
		t.Fatal(err)
	}
	e.Answer = start.Add(3 * time.Second)
	if err := svc.CallAnswered(ctx, e); err != nil {
		t.Fatal(err)
	}
	w.update(ctx, read()) // c-1 answered, c-2 started (oldest first)
	e.End, e.Status = e.Answer.Add(42*time.Second), 200
	if err := svc.CallEnded(ctx, e); err != nil {
		t.Fatal(err)
	}
	w.update(ctx, read()) // c-1 ended
	w.update(ctx, read()) // nothing new
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		f := strings.Fields(l)
		got = append(got, f[1]+" "+f[3])
	}
	want := []string{"call.started 8001001", "call.answered 8001001", "call.started 8001002", "call.ended 8001001"}
	if strings.Join(got, ",") != strings.Join(want, ",") || !strings.Contains(buf.String(), "status 200, 42s") {
		t.Fatalf("followed:\n%s", buf.String())
	}
}

// `convene cdr generate` has the running platform write the calls, which
// `convene cdr query` then lists.
func TestCdrGenerateThroughTheAPI(t *testing.T) {
	api, _ := recordsAPI(t, cdr.GenerateOptions{})
	out, errw, err := runCdr(t, api, "generate", "--count", "40", "--days", "2", "--seed", "4")
	if err != nil || !strings.Contains(out, "generated 40 calls over the last 2 days") {
		t.Fatalf("generate: %v\n%s%s", err, out, errw)
	}
	now := time.Now()
	out, errw, err = runCdr(t, api, "query", "--all", "--start", now.AddDate(0, 0, -3).Format(time.RFC3339), "--end", now.Add(time.Hour).Format(time.RFC3339))
	if err != nil || strings.Count(out, "\n") != 41 {
		t.Fatalf("query: %v\n%s%s", err, out, errw)
	}
	if _, _, err := runCdr(t, api, "generate", "--count", "0"); err == nil || !strings.Contains(err.Error(), "--count") {
		t.Fatalf("--count 0: %v", err)
	}
}
