package records_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/records"
)

// utcBuckets counts calls in UTC hours and days.
func utcBuckets(start time.Time) (hour, day time.Time) {
	return start.UTC().Truncate(time.Hour), start.UTC().Truncate(24 * time.Hour)
}

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func call(id string, start time.Duration) records.Call {
	return records.Call{ID: id, CallID: "cid-" + id, FromTag: "ft", Caller: "8001001", Called: "8002002",
		Type: records.CallVoice, Start: t0.Add(start), Node: "sip-a", Platform: "p1"}
}

func step(k records.CallStepKind, c records.Call) records.CallStep {
	return records.CallStep{Kind: k, Call: c}
}

func write(t *testing.T, db *records.DB, steps ...records.CallStep) records.CallOutcome {
	t.Helper()
	out, err := db.WriteCalls(context.Background(), records.CallBatch{Steps: steps}, utcBuckets)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sums adds up the roll-ups of grain over all time.
func sums(t *testing.T, db *records.DB, grain string) (calls, seconds int64) {
	t.Helper()
	rs, err := db.Rollups(context.Background(), grain, time.Unix(0, 0), t0.Add(1000*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		calls += r.Calls
		seconds += r.DurationSeconds
	}
	return calls, seconds
}

// A call's steps make it live, then a record counted once in each
// roll-up, however often its end is written.
func TestCallStepsRecordOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		c := call("a1", 0)
		out := write(t, db, step(records.CallStart, c))
		if _, ok := out.Live["a1"]; !ok {
			t.Fatalf("start: outcome %+v, want the call live", out)
		}
		ans := records.Call{ID: "a1", ToTag: "tt", Answer: t0.Add(5 * time.Second), Connected: true}
		write(t, db, step(records.CallAnswer, ans))
		live, err := db.LiveCall(ctx, "a1")
		if err != nil || live.ToTag != "tt" || !live.Answer.Equal(ans.Answer) || live.Caller != "8001001" {
			t.Fatalf("live call %+v, %v: want the answer merged into the start", live, err)
		}
		end := records.Call{ID: "a1", End: t0.Add(65*time.Second + 600*time.Millisecond), Status: 200, Type: records.CallVideo}
		for i := range 3 {
			out := write(t, db, step(records.CallEnd, end))
			if got := len(out.Ended); got != map[bool]int{true: 1, false: 0}[i == 0] {
				t.Fatalf("end #%d ended %d calls", i+1, got)
			}
		}
		rec, err := db.CallRecord(ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		// 60.6 s from answer to end rounds to 61.
		if rec.DurationSeconds != 61 || !rec.Connected || rec.Type != records.CallVideo || rec.Status != 200 || rec.Node != "sip-a" {
			t.Fatalf("record %+v: want 61 s, connected, video, 200, node sip-a", rec)
		}
		if _, err := db.LiveCall(ctx, "a1"); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("the ended call is still live: %v", err)
		}
		for _, g := range []string{records.GrainHour, records.GrainDay} {
			if n, s := sums(t, db, g); n != 1 || s != 61 {
				t.Fatalf("%s roll-ups: %d calls, %d s; want 1 call, 61 s", g, n, s)
			}
		}
	})
}

// A start or answer arriving after the call's end (a retry, the other
// node's) leaves no live call behind and changes no record.
func TestLateStepsLeaveNoLiveCall(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		c := call("b1", 0)
		end := c
		end.End = t0.Add(10 * time.Second)
		end.Status = 486
		write(t, db, step(records.CallEnd, end))
		out := write(t, db, step(records.CallStart, c), step(records.CallAnswer, records.Call{ID: "b1", Answer: t0.Add(time.Second)}))
		if !out.Late["b1"] || len(out.Live) != 0 {
			t.Fatalf("late steps outcome %+v: want b1 late, nothing live", out)
		}
		live, err := db.LiveCalls(ctx, nil, 0)
		if err != nil || len(live) != 0 {
			t.Fatalf("live calls %v, %v: want none", live, err)
		}
		rec, err := db.CallRecord(ctx, "b1")
		if err != nil || rec.Connected || rec.DurationSeconds != 0 {
			t.Fatalf("record %+v, %v: the late answer changed it", rec, err)
		}
	})
}

// Two writers (two nodes) ending the same calls at once, each also
// repeating the start: every call has one record, counted once, and none
// is left live.
func TestConcurrentWritersRecordEachCallOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		dbs := []*records.DB{open(t, url), open(t, url)}
		const calls, batch = 400, 20
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for w, db := range dbs {
			wg.Go(func() {
				for i := 0; i < calls; i += batch {
					var steps []records.CallStep
					for j := i; j < i+batch; j++ {
						// The writers take the calls in opposite orders.
						k := j
						if w == 1 {
							k = calls - 1 - j
						}
						c := call(fmt.Sprintf("c%04d", k), time.Duration(k)*time.Second)
						c.Answer = c.Start.Add(2 * time.Second)
						c.Connected = true
						end := c
						end.End = c.Answer.Add(time.Duration(k%50) * time.Second)
						end.Status = 200
						steps = append(steps, step(records.CallStart, c), step(records.CallEnd, end), step(records.CallStart, c))
					}
					if _, err := db.WriteCalls(ctx, records.CallBatch{Steps: steps}, utcBuckets); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		recs, err := dbs[0].CallRecords(ctx, records.CallFilter{})
		if err != nil || len(recs) != calls {
			t.Fatalf("%d records (%v), want %d", len(recs), err, calls)
		}
		var want int64
		for k := range calls {
			want += int64(k % 50)
		}
		for _, g := range []string{records.GrainHour, records.GrainDay} {
			if n, s := sums(t, dbs[0], g); n != calls || s != want {
				t.Fatalf("%s roll-ups: %d calls, %d s; want %d, %d s", g, n, s, calls, want)
			}
		}
		if live, err := dbs[0].LiveCalls(ctx, nil, 0); err != nil || len(live) != 0 {
			t.Fatalf("%d calls left live (%v)", len(live), err)
		}
	})
}

// Prefixes are byte ranges, also of bytes at the top of the range.
func TestCallRecordsMatchPrefixes(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		callers := []string{"8001", "80011", "8002", "800", "8001\U0010FFFF", "\U0010FFFF\U0010FFFF", "\U0010FFFF\U0010FFFF1", "9", "80\uD7FF", "80\uE000"}
		for i, c := range callers {
			r := call(fmt.Sprintf("p%d", i), time.Duration(i)*time.Minute)
			r.Caller = c
			r.End = r.Start.Add(time.Second)
			write(t, db, step(records.CallEnd, r))
		}
		for _, tc := range []struct {
			m    records.Match
			want int
		}{
			{records.Match{Value: "8001", Prefix: true}, 3},
			{records.Match{Value: "8001"}, 1},
			{records.Match{Value: "800", Prefix: true}, 5},
			{records.Match{Value: "\U0010FFFF\U0010FFFF", Prefix: true}, 2},
			{records.Match{Value: "80\uD7FF", Prefix: true}, 1},
			{records.Match{Value: "8", Prefix: true}, 7},
			{records.Match{Value: "", Prefix: true}, len(callers)},
		} {
			got, err := db.CallRecords(ctx, records.CallFilter{Caller: tc.m})
			if err != nil || len(got) != tc.want {
				t.Errorf("caller %+v: %d records (%v), want %d", tc.m, len(got), err, tc.want)
			}
		}
	})
}

// Log lines: written twice, kept once; listed by call and conference;
// deleted by age in batches.
func TestLogLines(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		var lines []records.LogLine
		for i := range 25 {
			lines = append(lines, records.LogLine{At: t0.Add(time.Duration(i) * time.Minute), CallID: "x1", Node: "sip-a",
				Message: fmt.Sprintf("INVITE %d", i), Attrs: map[string]string{"dir": "in"}})
		}
		lines = append(lines, records.LogLine{At: t0, E164: "6600001", Level: "WARN", Message: "conference moved"})
		for range 2 {
			if err := db.AddLogLines(ctx, lines); err != nil {
				t.Fatal(err)
			}
		}
		got, err := db.LogLines(ctx, records.LogFilter{CallID: "x1"})
		if err != nil || len(got) != 25 || got[3].Message != "INVITE 3" || got[3].Attrs["dir"] != "in" {
			t.Fatalf("call log: %d lines (%v), want 25 in order with attrs", len(got), err)
		}
		if got, _ := db.LogLines(ctx, records.LogFilter{E164: "6600001"}); len(got) != 1 || got[0].Level != "WARN" {
			t.Fatalf("conference log %+v", got)
		}
		n, err := db.DeleteLogLinesBefore(ctx, t0.Add(20*time.Minute), 3)
		if err != nil || n != 21 {
			t.Fatalf("deleted %d (%v), want 21", n, err)
		}
		if got, _ := db.LogLines(ctx, records.LogFilter{}); len(got) != 5 {
			t.Fatalf("%d lines left, want 5", len(got))
		}
	})
}

// Rebuilt roll-ups equal those kept as calls ended.
func TestRebuildRollups(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		for i := range 30 {
			c := call(fmt.Sprintf("r%02d", i), time.Duration(i)*37*time.Minute)
			c.Answer = c.Start.Add(time.Second)
			c.End = c.Answer.Add(time.Duration(i) * time.Second)
			write(t, db, step(records.CallEnd, c))
		}
		before, _ := db.Rollups(ctx, records.GrainHour, time.Unix(0, 0), t0.Add(1000*time.Hour))
		if zone, err := db.ClaimRollupZone(ctx, "UTC"); err != nil || zone != "UTC" {
			t.Fatalf("claim zone: %q, %v", zone, err)
		}
		if zone, _ := db.ClaimRollupZone(ctx, "Asia/Shanghai"); zone != "UTC" {
			t.Fatalf("a second claim took the zone: %q", zone)
		}
		if err := db.RebuildRollups(ctx, "UTC", utcBuckets); err != nil {
			t.Fatal(err)
		}
		after, _ := db.Rollups(ctx, records.GrainHour, time.Unix(0, 0), t0.Add(1000*time.Hour))
		if fmt.Sprint(before) != fmt.Sprint(after) || len(after) == 0 {
			t.Fatalf("rebuilt roll-ups differ:\n%v\n%v", before, after)
		}
	})
}
