package sipplugin

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/sip"
	"github.com/convene/convene/internal/testkit"
)

func recorderOn(t *testing.T) (*recorder, *records.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := records.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "records.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	svc, err := cdr.New(cdr.Options{}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r := newRecorder(svc, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.close(ctx)
		_ = svc.Shutdown(ctx)
	})
	return r, db
}

// The recorder says an end is written only once it is: the node keeps
// the call in the store until then.
func TestRecorderSaysWhenAnEndIsWritten(t *testing.T) {
	r, db := recorderOn(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	c := sip.CallEvent{CallID: "c1", FromTag: "f1", Caller: "1001", Called: "2001", Media: sip.MediaVideo, Node: "sip-a",
		Start: now.Add(-time.Minute), Answer: now.Add(-50 * time.Second), End: now, Status: 200, Connected: true}
	var written atomic.Int32
	r.CallStarted(ctx, c)
	r.Log(ctx, "c1", sip.LogLine{At: now, Node: "sip-a", Dir: sip.LogRoute, Text: "forking to 1 contact(s)"})
	r.CallEnded(ctx, c, func() { written.Add(1) })
	testkit.AwaitWithin(t, 20*time.Second, "the end written", func() bool { return written.Load() == 1 })
	calls, err := db.CallRecords(ctx, records.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0].Type != records.CallVideo || calls[0].DurationSeconds != 50 || !calls[0].Connected {
		t.Fatalf("records %+v", calls)
	}
	lines, err := db.LogLines(ctx, records.LogFilter{CallID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || lines[0].Attrs["dir"] != "" || lines[0].Message != "forking to 1 contact(s)" {
		t.Fatalf("log lines %+v", lines)
	}
	if r.written.Load() != 2 || r.lost.Load() != 0 {
		t.Fatalf("written %d lost %d", r.written.Load(), r.lost.Load())
	}
}

// An end the database does not take is tried again, then counted lost,
// and never said written.
func TestRecorderLosesWhatTheDatabaseRefuses(t *testing.T) {
	r, db := recorderOn(t)
	_ = db.Close() // every write fails from now on
	var written atomic.Int32
	r.CallEnded(context.Background(), sip.CallEvent{CallID: "c2", FromTag: "f", End: time.Now(), Status: 487}, func() { written.Add(1) })
	testkit.AwaitWithin(t, 20*time.Second, "the end counted lost", func() bool { return r.lost.Load() == 1 })
	if written.Load() != 0 || r.written.Load() != 0 {
		t.Fatalf("said written: %d, counted written: %d", written.Load(), r.written.Load())
	}
}
