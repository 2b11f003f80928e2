package cdr_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/convene/convene/internal/cdr"
)

var t0 = time.Date(2025, 3, 4, 10, 0, 0, 0, shanghai)

func event(i int) cdr.CallEvent {
	return cdr.CallEvent{CallID: fmt.Sprintf("call-%d@10.0.0.1", i), FromTag: "ft" + fmt.Sprint(i), Caller: "8001001", Called: "8002002",
		Type: cdr.Voice, Node: "sip-a", Platform: "p1", Start: t0.Add(time.Duration(i) * time.Minute)}
}

func dayQuery(t *testing.T, svc *cdr.Service, extra string) cdr.Query {
	t.Helper()
	v, err := url.ParseQuery("start=2025-03-04T00:00:00%2B08:00&end=2025-03-05T00:00:00%2B08:00" + extra)
	if err != nil {
		t.Fatal(err)
	}
	q, err := svc.ParseQuery(v)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// A call reported twice over, its end by both nodes and retried, has one
// record, counted once, announced once.
func TestRetriedAndDoubledStepsCountOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		a := startService(t, openDB(t, dbURL), cdr.Options{TimeZone: "Asia/Shanghai"})
		b := startService(t, openDB(t, dbURL), cdr.Options{TimeZone: "Asia/Shanghai"})
		subA, subB := a.Subscribe(0), b.Subscribe(0)
		e := event(1)
		for range 2 {
			if err := a.CallStarted(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		e.ToTag, e.Answer, e.Connected = "tt", e.Start.Add(3*time.Second), true
		for _, s := range []*cdr.Service{a, b} {
			if err := s.CallAnswered(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		e.End, e.Status = e.Answer.Add(90*time.Second+499*time.Millisecond), 200
		errs := make(chan error, 6)
		for _, s := range []*cdr.Service{a, b, a, b, a, b} {
			go func() { errs <- s.CallEnded(ctx, e) }()
		}
		for range 6 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		page, err := a.Query(ctx, dayQuery(t, a, ""))
		if err != nil || len(page.CDRs) != 1 || page.CDRs[0].DurationSeconds != 90 || !page.CDRs[0].Connected {
			t.Fatalf("records %+v (%v): want one, connected, 90 s", page.CDRs, err)
		}
		st, err := b.Stats(ctx, dayQuery(t, b, ""))
		if err != nil || st.Totals.Count != 1 || st.Totals.Voice.DurationSeconds != 90 {
			t.Fatalf("stats %+v (%v): want 1 voice call of 90 s", st.Totals, err)
		}
		for _, filter := range []string{"&caller=8001001", "&caller=8*", "&caller=8001*", "&called=8002002", "&called=800*"} {
			st, err := a.Stats(ctx, dayQuery(t, a, filter))
			if err != nil || st.Source != cdr.SourceRollups || st.Totals.Count != 1 || st.Totals.Voice.DurationSeconds != 90 {
				t.Fatalf("stats %s: %+v from %s (%v): want 1 voice call of 90 s from the roll-ups", filter, st.Totals, st.Source, err)
			}
		}
		ended := 0
		for _, sub := range []*cdr.Subscription{subA, subB} {
		drain:
			for {
				select {
				case c := <-sub.C:
					if c.Kind == cdr.ChangeEnded {
						ended++
					}
				default:
					break drain
				}
			}
		}
		if ended != 1 {
			t.Fatalf("the end was announced %d times by the two nodes, want once", ended)
		}
	})
}

// The live calls follow a call's steps, and the feed announces each.
func TestLiveCallsAndTheirFeed(t *testing.T) {
	eachBackend(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		svc := startService(t, openDB(t, dbURL), cdr.Options{TimeZone: "Asia/Shanghai"})
		sub := svc.Subscribe(16)
		defer sub.Close()
		next := func(kind string) cdr.Change {
			t.Helper()
			select {
			case c := <-sub.C:
				if c.Kind != kind {
					t.Fatalf("change %s, want %s", c.Kind, kind)
				}
				return c
			case <-time.After(20 * time.Second):
				t.Fatalf("no %s change", kind)
			}
			return cdr.Change{}
		}
		e := event(2)
		e.E164, e.Called, e.Type = "6600001", "6600001", cdr.Video
		if err := svc.CallStarted(ctx, e); err != nil {
			t.Fatal(err)
		}
		c := next(cdr.ChangeStarted)
		if c.Call.ID != cdr.RecordID(e.CallID, e.FromTag) || c.Call.End != nil || c.Call.E164 != "6600001" {
			t.Fatalf("started %+v", c.Call)
		}
		live, err := svc.Live(ctx, "", 0)
		if err != nil || len(live.Calls) != 1 || live.Calls[0].Type != cdr.Video {
			t.Fatalf("live %+v (%v), want the call", live, err)
		}
		e.Answer = e.Start.Add(time.Second)
		if err := svc.CallAnswered(ctx, e); err != nil {
			t.Fatal(err)
		}
		if c := next(cdr.ChangeAnswered); c.Call.Answer == nil || !c.Call.Connected {
			t.Fatalf("answered %+v", c.Call)
		}
		e.End, e.Status = e.Answer.Add(time.Minute), 200
		if err := svc.CallEnded(ctx, e); err != nil {
			t.Fatal(err)
		}
		if c := next(cdr.ChangeEnded); c.Call.End == nil || c.Call.DurationSeconds != 60 {
			t.Fatalf("ended %+v", c.Call)
		}
		if live, _ := svc.Live(ctx, "", 0); len(live.Calls) != 0 {
			t.Fatalf("still live: %+v", live.Calls)
		}
		// A start arriving after the end (a retry) leaves no live call
		// and announces nothing.
		if err := svc.CallStarted(ctx, event(2)); err != nil {
			t.Fatal(err)
		}
		if live, _ := svc.Live(ctx, "", 0); len(live.Calls) != 0 {
			t.Fatalf("a late start made the call live again: %+v", live.Calls)
		}
		select {
		case c := <-sub.C:
			t.Fatalf("a late start was announced: %+v", c)
		default:
		}
	})
}

// A subscriber that falls behind is cut off, told why; others are not
// held up.
func TestSlowSubscriberIsCutOff(t *testing.T) {
	ctx := context.Background()
	svc := startService(t, openDB(t, backends[0].url(t)), cdr.Options{})
	slow := svc.Subscribe(2)
	for i := range 4 {
		if err := svc.CallStarted(ctx, event(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for range slow.C {
		n++
	}
	if n != 2 || !errors.Is(slow.Err(), cdr.ErrSlowSubscriber) {
		t.Fatalf("slow subscriber got %d changes, err %v; want 2 then ErrSlowSubscriber", n, slow.Err())
	}
}

// Walking the pages while calls are written meets every record that was
// there when the walk began, once, and never one twice.
func TestPaginationStableUnderConcurrentInserts(t *testing.T) {
	eachBackend(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		svc := startService(t, openDB(t, dbURL), cdr.Options{TimeZone: "Asia/Shanghai"})
		opts := cdr.GenerateOptions{Count: 600, Days: 1, Seed: 11, Now: t0.Add(12 * time.Hour), Location: shanghai, Concurrency: 32}
		if _, err := cdr.Generate(ctx, svc, opts); err != nil {
			t.Fatal(err)
		}
		before := map[string]bool{}
		for i := range opts.Count {
			e := cdr.PlanCall(opts, i)
			before[cdr.RecordID(e.CallID, e.FromTag)] = true
		}
		// More calls of the same day, written while the walk goes on.
		more := opts
		more.Seed, more.Count = 12, 400
		done := make(chan error, 1)
		go func() { _, err := cdr.Generate(ctx, svc, more); done <- err }()

		v := url.Values{"start": {"2025-01-01T00:00:00Z"}, "end": {"2026-01-01T00:00:00Z"}, "page_size": {"13"}}
		q, err := svc.ParseQuery(v)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for {
			p, err := svc.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range p.CDRs {
				if seen[c.ID] {
					t.Fatalf("record %s listed twice", c.ID)
				}
				seen[c.ID] = true
			}
			if p.Next == "" {
				break
			}
			q.Page = p.Next
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for id := range before {
			if !seen[id] {
				t.Fatalf("record %s, written before the walk, was skipped", id)
			}
		}
	})
}

// Log lines of a call are read by its record's id; of a conference by
// its number; old ones are purged.
func TestCallLogAndRetention(t *testing.T) {
	eachBackend(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		clk := &clock{t: t0.Add(time.Hour)}
		svc := startService(t, openDB(t, dbURL), cdr.Options{TimeZone: "Asia/Shanghai", Now: clk.Now, LogRetention: 24 * time.Hour})
		e := event(3)
		msgs := []cdr.LogLine{
			{Time: e.Start, Direction: "in", Peer: "10.0.0.9:5060", Message: "INVITE sip:8002002@sip.demo SIP/2.0"},
			{Time: e.Start.Add(time.Millisecond), Message: "route: 8002002 → 2 contacts"},
			{Time: e.Start.Add(2 * time.Millisecond), Direction: "out", Peer: "10.0.0.7:5060", Message: "INVITE sip:8002002@10.0.0.7 SIP/2.0"},
		}
		for _, l := range append(msgs, msgs[0]) { // the first twice: kept once
			l.Node = "sip-a"
			if err := svc.Log(ctx, e.CallID, l); err != nil {
				t.Fatal(err)
			}
		}
		if err := svc.Log(ctx, "", cdr.LogLine{Time: e.Start, E164: "6600001", Message: "conference restored on 10.0.0.8", Level: "WARN"}); err != nil {
			t.Fatal(err)
		}
		if err := svc.CallStarted(ctx, e); err != nil {
			t.Fatal(err)
		}
		id := cdr.RecordID(e.CallID, e.FromTag)
		lg, err := svc.CallLog(ctx, id) // a live call's log
		if err != nil || len(lg.Lines) != 3 || lg.Lines[0].Direction != "in" || lg.Lines[1].Direction != "" || lg.Lines[2].Peer != "10.0.0.7:5060" {
			t.Fatalf("call log %+v (%v)", lg, err)
		}
		if _, err := svc.CallLog(ctx, "0123456789abcdef01234567"); !errors.Is(err, cdr.ErrNotFound) {
			t.Fatalf("log of an unknown call: %v", err)
		}
		if _, err := svc.Record(ctx, id); !errors.Is(err, cdr.ErrNotFound) {
			t.Fatalf("a live call has a record: %v", err)
		}
		conf, err := svc.ConferenceLog(ctx, "6600001", time.Time{}, 0)
		if err != nil || len(conf) != 1 || conf[0].Level != "WARN" {
			t.Fatalf("conference log %+v (%v)", conf, err)
		}
		clk.Set(t0.Add(25 * time.Hour))
		if n, err := svc.PurgeLogs(ctx); err != nil || n != 4 {
			t.Fatalf("purged %d (%v), want 4", n, err)
		}
		if lg, _ := svc.CallLog(ctx, id); len(lg.Lines) != 0 {
			t.Fatalf("lines past retention kept: %+v", lg.Lines)
		}
	})
}

// A live call nobody ended is ended by the sweep, once, with 408.
func TestStaleCallsAreEnded(t *testing.T) {
	eachBackend(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		clk := &clock{t: t0}
		db := openDB(t, dbURL)
		a := startService(t, db, cdr.Options{TimeZone: "Asia/Shanghai", Now: clk.Now, MaxCallDuration: 2 * time.Hour})
		b := startService(t, db, cdr.Options{TimeZone: "Asia/Shanghai", Now: clk.Now, MaxCallDuration: 2 * time.Hour})
		for i := range 3 {
			e := event(10 + i)
			e.Start = t0.Add(time.Duration(i) * time.Hour)
			if err := a.CallStarted(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		clk.Set(t0.Add(3*time.Hour + 30*time.Minute))
		errs := make(chan error, 2)
		for _, s := range []*cdr.Service{a, b} {
			go func() { _, err := s.EndStaleCalls(ctx); errs <- err }()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		live, _ := a.Live(ctx, "", 0)
		page, _ := a.Query(ctx, dayQuery(t, a, ""))
		if len(live.Calls) != 1 || len(page.CDRs) != 2 || page.CDRs[0].Status != 408 {
			t.Fatalf("live %d, records %+v: want the call of the last 2 hours live, two ended with 408", len(live.Calls), page.CDRs)
		}
		st, _ := a.Stats(ctx, dayQuery(t, a, ""))
		if st.Totals.Count != 2 {
			t.Fatalf("stats count %d stale calls, want 2", st.Totals.Count)
		}
	})
}

// The roll-ups of a database are in one time zone: a service set to
// another refuses to start until they are rebuilt in its zone.
func TestTimeZoneIsTheDatabases(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, backends[0].url(t))
	svc := startService(t, db, cdr.Options{TimeZone: "Asia/Shanghai"})
	e := event(1)
	e.End = e.Start.Add(time.Minute)
	if err := svc.CallEnded(ctx, e); err != nil {
		t.Fatal(err)
	}
	other, err := cdr.New(cdr.Options{TimeZone: "Europe/Paris"}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(ctx); !errors.Is(err, cdr.ErrTimeZone) {
		t.Fatalf("a service in another zone started: %v", err)
	}
	if err := other.RebuildRollups(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Start(ctx); err != nil {
		t.Fatalf("after the rebuild: %v", err)
	}
	defer other.Shutdown(ctx)
	// 10:01 in Shanghai is 03:01 in Paris.
	v := url.Values{"start": {"2025-03-04T00:00:00+01:00"}, "end": {"2025-03-05T00:00:00+01:00"}}
	q, _ := other.ParseQuery(v)
	st, err := other.Stats(ctx, q)
	if err != nil || st.Totals.Count != 1 || st.Buckets[3].Count != 1 {
		t.Fatalf("stats in Paris %+v (%v): want the call in the 03:00 bucket", st, err)
	}
	if _, err := cdr.New(cdr.Options{TimeZone: "Mars/Olympus"}, db, nil); !errors.Is(err, cdr.ErrTimeZone) {
		t.Fatalf("an unknown zone: %v", err)
	}
}

// Writes after Shutdown are refused; those before it are written.
func TestShutdownWritesWhatItTook(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, backends[0].url(t))
	svc, err := cdr.New(cdr.Options{}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 50)
	for i := range 50 {
		go func() { errs <- svc.CallStarted(ctx, event(200+i)) }()
	}
	var ok int
	for range 50 {
		if err := <-errs; err == nil {
			ok++
		} else if !errors.Is(err, cdr.ErrClosed) {
			t.Fatal(err)
		}
		if ok == 10 {
			if err := svc.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := svc.CallStarted(ctx, event(1)); !errors.Is(err, cdr.ErrClosed) {
		t.Fatalf("a write after Shutdown: %v", err)
	}
	again, err := cdr.New(cdr.Options{}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	live, err := again.Live(ctx, "", cdr.MaxPageSize)
	if err != nil || len(live.Calls) != ok {
		t.Fatalf("%d live calls (%v), want the %d writes that succeeded", len(live.Calls), err, ok)
	}
}

// Invalid events are refused before anything is written.
func TestInvalidEventsAreRefused(t *testing.T) {
	ctx := context.Background()
	svc := startService(t, openDB(t, backends[0].url(t)), cdr.Options{})
	for _, e := range []cdr.CallEvent{
		{},
		{CallID: "x", Type: "fax"},
		{CallID: "x", Status: 42},
		{CallID: "x", Caller: "80\x00"},
		{CallID: "x", Called: "\xff"},
	} {
		if err := svc.CallEnded(ctx, e); !errors.Is(err, cdr.ErrInvalidEvent) {
			t.Errorf("%+v: %v, want ErrInvalidEvent", e, err)
		}
	}
	if err := svc.Log(ctx, "x", cdr.LogLine{Message: "m", Level: "LOUD"}); !errors.Is(err, cdr.ErrInvalidEvent) {
		t.Errorf("bad level: %v", err)
	}
	if err := svc.Log(ctx, "", cdr.LogLine{Message: "m"}); !errors.Is(err, cdr.ErrInvalidEvent) {
		t.Errorf("a line of no call and no conference: %v", err)
	}
}
