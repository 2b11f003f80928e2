package records_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/records"
)

// numberRow is a number roll-up row as the test reads it and computes it.
type numberRow struct {
	side, number string
	exact        bool
	grain        string
	bucket       int64
	typ          string
	connected    bool
}

type numberSum struct{ calls, seconds int64 }

// expectNumbers counts calls under each caller and called number and
// each of its prefixes of 1 to 4 characters, hourly in UTC, and daily
// for prefixes of 1 to 4.
func expectNumbers(calls []records.Call) map[numberRow]numberSum {
	out := map[numberRow]numberSum{}
	for _, c := range calls {
		hour, day := utcBuckets(c.Start)
		for side, n := range map[string]string{"caller": c.Caller, "called": c.Called} {
			if n == "" {
				continue
			}
			keys := []numberRow{{side: side, number: n, exact: true}}
			runes := []rune(n)
			for l := 1; l <= min(len(runes), 4); l++ {
				keys = append(keys, numberRow{side: side, number: string(runes[:l])})
			}
			for _, k := range keys {
				for grain, b := range map[string]time.Time{"hour": hour, "day": day} {
					if grain == "day" && (k.exact || len([]rune(k.number)) > 4) {
						continue
					}
					k.grain, k.bucket, k.typ, k.connected = grain, b.UnixMilli(), c.Type, c.Connected
					s := out[k]
					s.calls++
					s.seconds += c.DurationSeconds
					out[k] = s
				}
			}
		}
	}
	return out
}

func storedNumbers(t *testing.T, db *records.DB) map[numberRow]numberSum {
	t.Helper()
	rows, err := records.Raw(db).Query(`SELECT side, number, exact, grain, bucket, type, connected, calls, duration_seconds FROM call_number_rollups`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[numberRow]numberSum{}
	for rows.Next() {
		var (
			k numberRow
			s numberSum
		)
		if err := rows.Scan(&k.side, &k.number, &k.exact, &k.grain, &k.bucket, &k.typ, &k.connected, &s.calls, &s.seconds); err != nil {
			t.Fatal(err)
		}
		out[k] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameNumbers(t *testing.T, what string, got, want map[numberRow]numberSum) {
	t.Helper()
	if maps.Equal(got, want) {
		return
	}
	for _, k := range slices.SortedFunc(maps.Keys(want), func(a, b numberRow) int { return cmpRows(a, b) }) {
		if got[k] != want[k] {
			t.Errorf("%s: %+v: %+v, want %+v", what, k, got[k], want[k])
		}
	}
	for k, s := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %+v: %+v, want no row", what, k, s)
		}
	}
	t.FailNow()
}

func cmpRows(a, b numberRow) int {
	as, bs := fmt.Sprint(a), fmt.Sprint(b)
	switch {
	case as < bs:
		return -1
	case as > bs:
		return 1
	}
	return 0
}

// numberCalls are ended calls of varied numbers: extensions, a mobile
// number longer than the prefixes counted, a name of several-byte
// characters, and no caller at all.
func numberCalls(from, n int) []records.Call {
	callers := []string{"8001001", "8001002", "8001", "13812345678", "张小明abcdefg", ""}
	var out []records.Call
	for i := from; i < from+n; i++ {
		c := call(fmt.Sprintf("n%04d", i), time.Duration(i)*23*time.Minute)
		c.Caller = callers[i%len(callers)]
		c.Called = fmt.Sprintf("800%d00%d", i%3, i%4)
		if i%5 == 0 {
			c.Type = records.CallVideo
		}
		if i%3 != 0 {
			c.Answer, c.Connected = c.Start.Add(2*time.Second), true
		}
		c.End = c.Start.Add(time.Duration(10+i) * time.Second)
		out = append(out, c)
	}
	return out
}

// ended is the record the calls' end writes (connected when answered,
// duration from answer to end).
func ended(cs []records.Call) []records.Call {
	out := slices.Clone(cs)
	for i, c := range out {
		if !c.Answer.IsZero() {
			out[i].DurationSeconds = records.DurationSeconds(c.Answer, c.End)
		}
	}
	return out
}

func writeEnds(t *testing.T, db *records.DB, cs []records.Call) {
	t.Helper()
	var steps []records.CallStep
	for _, c := range cs {
		steps = append(steps, step(records.CallEnd, c))
	}
	write(t, db, steps...)
}

// The number roll-ups count each call once under each of its numbers
// and their prefixes, however often its end is written, in one batch or
// again in another.
func TestNumberRollupsCountEachCallOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		db := open(t, url)
		calls := numberCalls(0, 60)
		writeEnds(t, db, append(slices.Clone(calls[:40]), calls[:10]...)) // ten ends twice in one batch
		writeEnds(t, db, calls[20:])                                      // twenty again in another
		sameNumbers(t, "written", storedNumbers(t, db), expectNumbers(ended(calls)))
	})
}

// Statistics by number read the rows of the number and prefix asked for,
// and refuse what they do not count.
func TestNumberRollupsAnswerNumbersAndShortPrefixes(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		calls := ended(numberCalls(0, 60))
		writeEnds(t, db, calls)
		for _, c := range []struct {
			side string
			m    records.Match
			keep func(c records.Call) bool
		}{
			{records.SideCaller, records.Match{Value: "8001"}, func(c records.Call) bool { return c.Caller == "8001" }},
			{records.SideCaller, records.Match{Value: "8001", Prefix: true}, func(c records.Call) bool { return len(c.Caller) >= 4 && c.Caller[:4] == "8001" }},
			{records.SideCaller, records.Match{Value: "张小明", Prefix: true}, func(c records.Call) bool { return c.Caller == "张小明abcdefg" }},
			{records.SideCaller, records.Match{Value: "1381", Prefix: true}, func(c records.Call) bool { return strings.HasPrefix(c.Caller, "1381") }},
			{records.SideCalled, records.Match{Value: "8001002"}, func(c records.Call) bool { return c.Called == "8001002" }},
		} {
			var want int64
			for _, call := range calls {
				if c.keep(call) {
					want++
				}
			}
			rows, err := db.NumberRollups(ctx, c.side, c.m, records.GrainDay, t0.Add(-48*time.Hour), t0.Add(48*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			var got int64
			for _, r := range rows {
				got += r.Calls
			}
			if want == 0 || got != want {
				t.Errorf("%s %+v: %d calls, want %d", c.side, c.m, got, want)
			}
		}
		for _, m := range []records.Match{{Value: "13812", Prefix: true}, {}, {Prefix: true}, {Value: "\xff"}} {
			if records.NumberRollupsAnswer(m) {
				t.Errorf("the number roll-ups say they answer %+v", m)
			}
			if _, err := db.NumberRollups(ctx, records.SideCaller, m, records.GrainDay, t0, t0.Add(time.Hour)); err == nil {
				t.Errorf("number roll-ups of %+v: no error", m)
			}
		}
	})
}

// A database written before the number roll-ups existed has its records
// counted in them once, by the first backfill after the upgrade, with
// the calls written since counted once too.
func TestNumberRollupsBackfilledAfterUpgrade(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		old := numberCalls(0, 50)
		writeEnds(t, db, old)
		// What the version before wrote: the same records and roll-ups,
		// without the number roll-ups' table.
		raw := records.Raw(db)
		if _, err := raw.Exec(`DROP TABLE call_number_rollups`); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE version = 5`); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = open(t, url) // the upgrade
		if got := storedNumbers(t, db); len(got) != 0 {
			t.Fatalf("%d number roll-ups right after the upgrade, want none", len(got))
		}
		// A node of the new version writes calls before the backfill ran.
		since := numberCalls(50, 20)
		writeEnds(t, db, since)
		for range 2 { // the second finds nothing to do
			if err := db.BackfillNumberRollups(ctx, utcBuckets); err != nil {
				t.Fatal(err)
			}
			sameNumbers(t, "backfilled", storedNumbers(t, db), expectNumbers(ended(append(old, since...))))
		}
		if err := db.RebuildRollups(ctx, "UTC", utcBuckets); err != nil {
			t.Fatal(err)
		}
		sameNumbers(t, "rebuilt", storedNumbers(t, db), expectNumbers(ended(append(old, since...))))
	})
}

// A new database has nothing to backfill, and its first records are
// counted as they are written, not again.
func TestNumberRollupsNotBackfilledOnANewDatabase(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		db := open(t, url)
		calls := numberCalls(0, 10)
		writeEnds(t, db, calls)
		if err := db.BackfillNumberRollups(context.Background(), utcBuckets); err != nil {
			t.Fatal(err)
		}
		sameNumbers(t, "written", storedNumbers(t, db), expectNumbers(ended(calls)))
	})
}
