package logkeep

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSink keeps what it is given; block, when set, holds every write
// until it is closed.
type memSink struct {
	mu    sync.Mutex
	lines []Line
	block chan struct{}
	fail  error
}

func (s *memSink) KeepLines(ctx context.Context, lines []Line) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.lines = append(s.lines, lines...)
	return nil
}

func (s *memSink) got() []Line {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Line(nil), s.lines...)
}

// eventually polls cond until it holds, failing after 10 s. The keeper's
// own tests cannot use the shared testkit, whose store depends on it.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newTest(t *testing.T, o Options) (*Keeper, *memSink, *slog.Logger, *bytes.Buffer) {
	t.Helper()
	if o.Node == "" {
		o.Node = "host-a"
	}
	k := New(o)
	sink := &memSink{}
	if !k.Attach(sink) {
		t.Fatal("the first Attach was refused")
	}
	t.Cleanup(func() { k.Detach(context.Background()) })
	var out bytes.Buffer
	log := slog.New(k.Handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})))
	return k, sink, log, &out
}

// Lines with a call id or a conference number are kept, with their other
// attributes; every line still reaches the wrapped handler.
func TestHandlerKeepsTaggedLines(t *testing.T) {
	k, sink, log, out := newTest(t, Options{})
	log.Info("no tags here", "node", "n1")
	log.Info("conference created", "e164", "6600001", "node", "n1")
	conf := log.With("e164", 6600002, "platform", "plat-a")
	conf.Warn("restore failed", "err", errors.New("node gone"))
	log.Info("call routed", "call_id", "abc@host", slog.Group("sip", "peer", "10.0.0.1"))
	log.WithGroup("g").Info("grouped tag is not a tag", "e164", "6600003")
	log.Debug("below the level", "e164", "6600004")
	log.Info("", "e164", "6600005")
	k.Detach(context.Background())

	got := sink.got()
	if len(got) != 4 {
		t.Fatalf("kept %d lines, want 4: %+v", len(got), got)
	}
	want := []struct {
		msg, level, e164, callID string
		attrs                    map[string]string
	}{
		{"conference created", "INFO", "6600001", "", map[string]string{"node": "n1"}},
		{"restore failed", "WARN", "6600002", "", map[string]string{"platform": "plat-a", "err": "node gone"}},
		{"call routed", "INFO", "", "abc@host", map[string]string{"sip.peer": "10.0.0.1"}},
		{"(no message)", "INFO", "6600005", "", nil},
	}
	for i, w := range want {
		l := got[i]
		if l.Message != w.msg || l.Level != w.level || l.E164 != w.e164 || l.CallID != w.callID || l.Node != "host-a" || l.At.IsZero() {
			t.Errorf("line %d: %+v, want %+v", i, l, w)
		}
		if len(l.Attrs) != len(w.attrs) {
			t.Errorf("line %d attrs %v, want %v", i, l.Attrs, w.attrs)
		}
		for key, v := range w.attrs {
			if l.Attrs[key] != v {
				t.Errorf("line %d attr %s = %q, want %q", i, key, l.Attrs[key], v)
			}
		}
	}
	for _, msg := range []string{"no tags here", "conference created", "restore failed", "call routed", "grouped tag"} {
		if !strings.Contains(out.String(), msg) {
			t.Errorf("the wrapped handler did not get %q:\n%s", msg, out)
		}
	}
	if strings.Contains(out.String(), "below the level") {
		t.Errorf("the wrapped handler printed a line below its level:\n%s", out)
	}
	if s := k.Stats(); s.Kept != 4 || s.Dropped != 0 {
		t.Errorf("stats %+v, want 4 kept", s)
	}
}

// A keeper whose level is Debug keeps debug lines the wrapped handler
// does not print.
func TestHandlerKeepsBelowPrintedLevel(t *testing.T) {
	k, sink, log, out := newTest(t, Options{Level: slog.LevelDebug})
	log.Debug("placing", "e164", "6600001")
	k.Detach(context.Background())
	if got := sink.got(); len(got) != 1 || got[0].Level != "DEBUG" {
		t.Fatalf("kept %+v, want the debug line", got)
	}
	if out.Len() != 0 {
		t.Fatalf("the wrapped handler printed a debug line:\n%s", out)
	}
}

// Without a sink nothing is kept, and nothing waits.
func TestNoSinkKeepsNothing(t *testing.T) {
	k := New(Options{Queue: 1})
	log := slog.New(k.Handler(slog.DiscardHandler))
	for range 10 {
		log.Info("conference created", "e164", "6600001")
	}
	if s := k.Stats(); s != (Stats{}) {
		t.Fatalf("stats %+v without a sink, want none", s)
	}
	if log.Enabled(context.Background(), slog.LevelInfo) {
		t.Fatal("a discarding logger without a sink says it is enabled")
	}
}

// A sink that does not answer never makes a caller wait: lines beyond
// the queue are dropped and counted, and those queued are written once
// the sink answers again.
func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	k := New(Options{Queue: 4, Batch: 1, Every: time.Millisecond, WriteTimeout: time.Minute})
	sink := &memSink{block: make(chan struct{})}
	k.Attach(sink)
	log := slog.New(k.Handler(slog.DiscardHandler))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			log.Info("conference created", "e164", "6600001")
		}
	}()
	<-done // returns although the sink answers nothing
	s := k.Stats()
	// At most the queue and the batch in the writer's hands are held.
	if s.Dropped < 1000-4-1 {
		t.Fatalf("stats %+v: want at least %d dropped", s, 1000-4-1)
	}
	close(sink.block)
	k.Detach(context.Background())
	s = k.Stats()
	if s.Kept+s.Dropped != 1000 || len(sink.got()) != int(s.Kept) {
		t.Fatalf("stats %+v, sink has %d: every line is kept or dropped", s, len(sink.got()))
	}
}

// A sink that refuses counts the lines failed; the keeper goes on.
func TestSinkFailureCounted(t *testing.T) {
	k := New(Options{Every: time.Millisecond})
	sink := &memSink{fail: errors.New("disk full")}
	k.Attach(sink)
	log := slog.New(k.Handler(slog.DiscardHandler))
	log.Info("a", "e164", "6600001")
	eventually(t, "the failure counted", func() bool { return k.Stats().Failed == 1 })
	sink.mu.Lock()
	sink.fail = nil
	sink.mu.Unlock()
	log.Info("b", "e164", "6600001")
	eventually(t, "the next line kept", func() bool { return k.Stats().Kept == 1 })
	k.Detach(context.Background())
}

// Lines are written in batches of at most Batch, and Detach writes what
// waits.
func TestBatchesAndDetachFlushes(t *testing.T) {
	k := New(Options{Batch: 3, Every: time.Hour})
	sink := &memSink{}
	k.Attach(sink)
	if k.Attach(&memSink{}) {
		t.Fatal("a second sink was attached")
	}
	log := slog.New(k.Handler(slog.DiscardHandler))
	for range 7 {
		log.Info("x", "call_id", "c1")
	}
	eventually(t, "two full batches", func() bool { return len(sink.got()) >= 6 })
	k.Detach(context.Background())
	if n := len(sink.got()); n != 7 {
		t.Fatalf("kept %d lines after Detach, want 7", n)
	}
	log.Info("after detach", "call_id", "c1")
	if n := len(sink.got()); n != 7 || k.Active() {
		t.Fatalf("a detached keeper kept a line (%d) or is active", n)
	}
}

// Text the records would refuse (invalid UTF-8, NUL) is cleaned, and long
// values cut.
func TestCleansText(t *testing.T) {
	k, sink, log, _ := newTest(t, Options{})
	log.Info("bad \xff text\x00", "e164", "66\x0001", "big", strings.Repeat("é", 2000))
	k.Detach(context.Background())
	got := sink.got()
	if len(got) != 1 {
		t.Fatalf("kept %d lines", len(got))
	}
	l := got[0]
	if l.Message != "bad \uFFFD text" || l.E164 != "6601" || len(l.Attrs["big"]) > maxValue || !strings.HasPrefix(l.Attrs["big"], "é") {
		t.Fatalf("cleaned line %+v", l)
	}
}
