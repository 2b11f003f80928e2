package host_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/records"
)

// confLogger logs about a conference when it starts and about a call when
// it stops.
type confLogger struct{ log *slog.Logger }

func (c *confLogger) Provision(ctx host.Context, _ any) error {
	c.log = ctx.Logger()
	return nil
}

func (c *confLogger) Start(context.Context) error {
	c.log.Info("not about a conference")
	c.log.With("e164", "6600001").Info("conference created", "node", "n1")
	c.log.Debug("below the level", "e164", "6600001")
	return nil
}

func (c *confLogger) Stop(context.Context) error {
	c.log.Warn("call ended", "call_id", "abc@10.0.0.1")
	return nil
}

func init() {
	host.Register(host.Plugin{
		ID:     "test.conflogger",
		Doc:    "logs about a conference and a call",
		Server: func() host.Server { return new(confLogger) },
	})
}

// syncBuffer is a buffer a logger writes from several goroutines.
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

// A host with a records resource keeps its instances' lines about calls
// and conferences there, those logged while it stops included; every
// line still reaches the host's own logger.
func TestHostKeepsLogLines(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "records.db")
	f, err := host.Parse("logs.yaml", []byte(`
host: {name: logs-host}
infrastructure:
  records: {plugin: convene.records.sql, url: "`+url+`"}
servers:
  conf: {plugin: test.conflogger}
`))
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	h, err := host.New(f, host.Options{Log: slog.New(slog.NewTextHandler(&out, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := records.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lines, err := db.LogLines(ctx, records.LogFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 {
		t.Fatalf("kept %d lines, want 2: %+v", len(lines), lines)
	}
	conf, call := lines[0], lines[1]
	if conf.E164 != "6600001" || conf.Message != "conference created" || conf.Level != "INFO" || conf.Node != "logs-host" ||
		conf.Attrs["node"] != "n1" || conf.Attrs["plugin"] != "test.conflogger" || conf.Attrs["instance"] != "conf" {
		t.Errorf("conference line %+v", conf)
	}
	if call.CallID != "abc@10.0.0.1" || call.Message != "call ended" || call.Level != "WARN" {
		t.Errorf("call line %+v", call)
	}
	for _, msg := range []string{"not about a conference", "conference created", "call ended"} {
		if !strings.Contains(out.String(), msg) {
			t.Errorf("the host's logger did not print %q:\n%s", msg, out.String())
		}
	}
}

// A host without a records resource keeps nothing and logs as before.
func TestHostWithoutRecordsKeepsNothing(t *testing.T) {
	f, err := host.Parse("nologs.yaml", []byte(`
host: {name: plain-host}
servers:
  conf: {plugin: test.conflogger}
`))
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	h, err := host.New(f, host.Options{Log: slog.New(slog.NewTextHandler(&out, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "conference created") || strings.Contains(out.String(), "below the level") {
		t.Fatalf("the host's logger printed:\n%s", out.String())
	}
	if strings.Contains(out.String(), "are kept") {
		t.Fatalf("a host without records says it keeps logs:\n%s", out.String())
	}
}
