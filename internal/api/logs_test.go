package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/logkeep"
	"github.com/convene/convene/internal/pgtest"
	"github.com/convene/convene/internal/records"
)

// logBackends are the records databases the logs are read from: SQLite
// and a real PostgreSQL.
var logBackends = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "records.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.Start(t) }},
}

// logsHarness is a harness whose API reads logs from a records database
// (at url) holding a few lines.
func logsHarness(t *testing.T, url string) (*harness, time.Time) {
	t.Helper()
	h := newHarness(t)
	db, err := records.Open(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h.srv.records = db
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	lines := []logkeep.Line{
		{At: t0, Level: "DEBUG", Node: "host-a", E164: "6600001", Message: "placing"},
		{At: t0.Add(time.Second), Level: "INFO", Node: "host-a", E164: "6600001", Message: "conference created", Attrs: map[string]string{"node": "n1"}},
		{At: t0.Add(2 * time.Second), Level: "WARN", Node: "host-a", E164: "6600002", Message: "restore failed"},
		{At: t0.Add(3 * time.Second), Level: "INFO", Node: "sip-1", CallID: "abc@10.0.0.1", Message: "call routed"},
		{At: t0.Add(4 * time.Second), Level: "ERROR", Node: "host-a", E164: "6600001", Message: "node lost"},
	}
	if err := db.KeepLines(context.Background(), lines); err != nil {
		t.Fatal(err)
	}
	// Kept twice, stored once.
	if err := db.KeepLines(context.Background(), lines[:2]); err != nil {
		t.Fatal(err)
	}
	return h, t0
}

func TestLogs(t *testing.T) {
	for _, b := range logBackends {
		t.Run(b.name, func(t *testing.T) { testLogs(t, b.url(t)) })
	}
}

func testLogs(t *testing.T, url string) {
	h, t0 := logsHarness(t, url)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts apiclient.LogOptions
		want []string
	}{
		{"all", apiclient.LogOptions{}, []string{"placing", "conference created", "restore failed", "call routed", "node lost"}},
		{"a conference", apiclient.LogOptions{E164: "6600001"}, []string{"placing", "conference created", "node lost"}},
		{"a call", apiclient.LogOptions{CallID: "abc@10.0.0.1"}, []string{"call routed"}},
		{"a call or a conference", apiclient.LogOptions{CallID: "abc@10.0.0.1", E164: "6600002"}, []string{"restore failed", "call routed"}},
		{"level info and above", apiclient.LogOptions{E164: "6600001", Level: "info"}, []string{"conference created", "node lost"}},
		{"level warn and above", apiclient.LogOptions{Level: "WARN"}, []string{"restore failed", "node lost"}},
		{"since", apiclient.LogOptions{Since: t0.Add(2 * time.Second)}, []string{"restore failed", "call routed", "node lost"}},
		{"limit", apiclient.LogOptions{Limit: 2}, []string{"placing", "conference created"}},
		{"nothing", apiclient.LogOptions{E164: "6699999"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := h.client.Logs(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range list.Lines {
				got = append(got, l.Message)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	list, err := h.client.Logs(ctx, apiclient.LogOptions{E164: "6600001", Level: "info", Limit: 1})
	if err != nil || len(list.Lines) != 1 {
		t.Fatalf("%+v, %v", list, err)
	}
	if l := list.Lines[0]; !l.Time.Equal(t0.Add(time.Second)) || l.Level != "INFO" || l.Node != "host-a" || l.Attrs["node"] != "n1" {
		t.Fatalf("line %+v", l)
	}
	// An empty answer is a list, not null.
	status, body := h.do(http.MethodGet, "/v1/logs?e164=6699999", "")
	if status != http.StatusOK || !strings.Contains(string(body), `"lines":[]`) {
		t.Fatalf("%d %s", status, body)
	}
}

// Bad input is refused with 400 naming the parameter.
func TestLogsBadInput(t *testing.T) {
	h, _ := logsHarness(t, logBackends[0].url(t))
	for _, tc := range []struct{ query, param string }{
		{"e164=12", "e164"},
		{"e164=abc", "e164"},
		{"call_id=" + url.QueryEscape("a\x00b"), "call_id"},
		{"call_id=" + strings.Repeat("a", 300), "call_id"},
		{"level=verbose", "level"},
		{"since=yesterday", "since"},
		{"since=2026-05-01", "since"},
		{"limit=0", "limit"},
		{"limit=10001", "limit"},
		{"limit=x", "limit"},
		{"e164=6600001&e164=6600002", "e164"},
		{"sinse=2026-05-01T00:00:00Z", "sinse"},
	} {
		status, body := h.do(http.MethodGet, "/v1/logs?"+tc.query, "")
		var eb codes.Envelope
		_ = json.Unmarshal(body, &eb)
		if status != http.StatusBadRequest || eb.Error.Code != codes.BadRequest || !strings.Contains(eb.Error.Message, `"`+tc.param+`"`) {
			t.Errorf("%s: %d %s, want 400 naming %q", tc.query, status, body, tc.param)
		}
	}
}

// Without a records database the route says what to do.
func TestLogsWithoutRecords(t *testing.T) {
	h := newHarness(t)
	_, err := h.client.Logs(context.Background(), apiclient.LogOptions{})
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.Code != codes.RecordsUnavailable || !strings.Contains(ae.Message, "records") {
		t.Fatalf("got %v", err)
	}
}

// Any query is answered or refused as bad request naming a parameter,
// never anything else.
func FuzzLogQuery(f *testing.F) {
	for _, s := range []string{"", "e164=6600001", "level=warn&since=2026-05-01T00:00:00Z", "limit=5", "call_id=%FF", "e164=1&e164=2", "since=2026-13-01T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		r := request(http.MethodGet, "/v1/logs", nil)
		r.URL.RawQuery = q
		if _, e := logQuery(r); e != nil {
			wantRefusal(t, []byte(q), e)
		}
	})
}
