package cdr_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/testkit"
)

// Post queues a step without waiting: done is told once it is written,
// and the record is there then; a step posted again (a retry) counts once.
func TestPostToldOnceWritten(t *testing.T) {
	db := openDB(t, "sqlite://"+t.TempDir()+"/records.db")
	s := startService(t, db, cdr.Options{})
	ctx := context.Background()
	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	ev := cdr.CallEvent{CallID: "post-1", FromTag: "f", Caller: "1001", Called: "2001", Type: cdr.Voice, Node: "sip-a", Start: start}
	var mu sync.Mutex
	var outcomes []error
	done := func(err error) { mu.Lock(); outcomes = append(outcomes, err); mu.Unlock() }
	answered, ended := ev, ev
	answered.Answer = start.Add(time.Second)
	ended.Answer, ended.End, ended.Status = start.Add(time.Second), start.Add(10*time.Second), 200
	steps := []struct {
		k cdr.Step
		e cdr.CallEvent
	}{{cdr.Started, ev}, {cdr.Answered, answered}, {cdr.Ended, ended}, {cdr.Ended, ended}}
	for _, st := range steps {
		if err := s.Post(ctx, st.k, st.e, done); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PostLog(ctx, "post-1", cdr.LogLine{Node: "sip-a", Direction: "in", Message: "INVITE sip:2001@x SIP/2.0"}, done); err != nil {
		t.Fatal(err)
	}
	testkit.AwaitWithin(t, 20*time.Second, "every post told", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(outcomes) == len(steps)+1
	})
	for _, err := range outcomes {
		if err != nil {
			t.Fatalf("a post failed: %v", err)
		}
	}
	calls, err := db.CallRecords(ctx, records.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || !calls[0].Connected || calls[0].DurationSeconds != 9 || calls[0].Status != 200 {
		t.Fatalf("records %+v", calls)
	}
	// Refused before it is queued: an error, and done is not called.
	if err := s.Post(ctx, cdr.Started, cdr.CallEvent{}, done); !errors.Is(err, cdr.ErrInvalidEvent) {
		t.Fatalf("a call without a Call-ID: %v", err)
	}
	if err := s.Post(ctx, cdr.Step(9), ev, done); !errors.Is(err, cdr.ErrInvalidEvent) {
		t.Fatalf("no such step: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Post(ctx, cdr.Started, ev, done); !errors.Is(err, cdr.ErrClosed) {
		t.Fatalf("after shutdown: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(outcomes) != len(steps)+1 {
		t.Fatalf("done was called for refused posts: %d outcomes", len(outcomes))
	}
}
