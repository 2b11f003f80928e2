package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
)

// fakeLogs answers GET /v1/logs from lines, as the API does: since
// inclusive, oldest first, at most limit.
type fakeLogs struct {
	mu    sync.Mutex
	lines []apiclient.LogLine
	asks  int
}

func (f *fakeLogs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asks++
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		since, _ = time.Parse(time.RFC3339Nano, v)
	}
	limit := 1000
	if v := r.URL.Query().Get("limit"); v != "" {
		limit, _ = strconv.Atoi(v)
	}
	out := apiclient.LogList{Lines: []apiclient.LogLine{}}
	for _, l := range f.lines {
		if !l.Time.Before(since) && len(out.Lines) < limit {
			out.Lines = append(out.Lines, l)
		}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (f *fakeLogs) add(l apiclient.LogLine) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines = append(f.lines, l)
}

// syncWriter is a buffer written by one goroutine and read by another.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// --follow prints every line once: lines of one instant split over two
// answers, full pages asked again at once, lines kept later.
func TestFollowLogsPrintsEachLineOnce(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	f := &fakeLogs{lines: []apiclient.LogLine{
		{Time: t0, Level: "INFO", E164: "6600001", Message: "one"},
		{Time: t0.Add(time.Second), Level: "INFO", E164: "6600001", Message: "two"},
		{Time: t0.Add(time.Second), Level: "INFO", E164: "6600001", Message: "three"},
		{Time: t0.Add(2 * time.Second), Level: "WARN", E164: "6600001", Message: "four", Attrs: map[string]string{"node": "n1"}},
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := apiclient.New(srv.URL, "t")
	defer c.CloseIdleConnections()
	var out syncWriter
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- followLogs(ctx, c, apiclient.LogOptions{E164: "6600001", Since: t0, Limit: 2}, &logPrinter{out: &out})
	}()
	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %q; printed:\n%s", what, out.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(" four node=n1")
	f.add(apiclient.LogLine{Time: t0.Add(3 * time.Second), Level: "ERROR", E164: "6600001", Message: "five \x1b[31m"})
	waitFor("five")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		fields := strings.Fields(line)
		msgs = append(msgs, fields[3])
	}
	if got := strings.Join(msgs, " "); got != `one two three four "five` {
		t.Fatalf("printed %q:\n%s", got, out.String())
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Fatalf("an escape reached the terminal:\n%q", out.String())
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-05-01T09:00:00Z", now.Add(-time.Hour), true},
		{"10m", now.Add(-10 * time.Minute), true},
		{"yesterday", time.Time{}, false},
		{"-5m", time.Time{}, false},
	} {
		got, err := parseSince(tc.in, now)
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("%q: %v, %v", tc.in, got, err)
		}
	}
}
