package cdr_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/convene/convene/internal/cdr"
)

// Hours and days follow the platform's clock through daylight saving
// time: a day of 23 or 25 hours is one day bucket, and its hour buckets
// are the hours its clock shows (01:00 twice in November).
func TestStatsFollowDaylightSavingTime(t *testing.T) {
	ctx := context.Background()
	ny := mustZone("America/New_York")
	svc := startService(t, openDB(t, backends[0].url(t)), cdr.Options{TimeZone: "America/New_York"})
	var starts []time.Time
	first := time.Date(2025, 3, 8, 0, 0, 0, 0, ny)
	for i := 0; ; i++ {
		s := first.Add(time.Duration(i) * 20 * time.Minute)
		if !s.Before(time.Date(2025, 3, 11, 0, 0, 0, 0, ny)) {
			break
		}
		starts = append(starts, s)
	}
	for i := 0; i < 4*24*3; i++ {
		starts = append(starts, time.Date(2025, 11, 1, 0, 0, 0, 0, ny).Add(time.Duration(i)*20*time.Minute))
	}
	for i, s := range starts {
		e := cdr.CallEvent{CallID: fmt.Sprintf("dst-%d", i), Start: s, Answer: s.Add(time.Second), End: s.Add(time.Duration(i%7+1) * time.Second)}
		if err := svc.CallEnded(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	stats := func(start, end string) cdr.Stats {
		t.Helper()
		q, err := svc.ParseQuery(url.Values{"start": {start}, "end": {end}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := svc.Stats(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	count := func(from, to time.Time) (n int64) {
		for _, s := range starts {
			if !s.Before(from) && s.Before(to) {
				n++
			}
		}
		return n
	}

	// 2 November: 25 hours, 01:00 twice.
	st := stats("2025-11-02T00:00:00-04:00", "2025-11-03T00:00:00-05:00")
	if st.Bucket != "hour" || len(st.Buckets) != 25 {
		t.Fatalf("2 November: %d %s buckets, want 25 hours", len(st.Buckets), st.Bucket)
	}
	for i, b := range st.Buckets {
		want := time.Date(2025, 11, 2, 4, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour) // 00:00 EDT, then each hour
		if !b.Start.Equal(want) || b.Count != count(want, want.Add(time.Hour)) || b.Count != 3 {
			t.Fatalf("bucket %d: %s with %d calls, want %s with %d", i, b.Start, b.Count, want.In(ny), count(want, want.Add(time.Hour)))
		}
	}
	if st.Buckets[1].Start.In(ny).Hour() != 1 || st.Buckets[2].Start.In(ny).Hour() != 1 {
		t.Fatalf("the repeated hour: buckets start %s and %s", st.Buckets[1].Start, st.Buckets[2].Start)
	}

	// 8 to 11 March: the 9th has 23 hours.
	st = stats("2025-03-08T00:00:00-05:00", "2025-03-11T00:00:00-04:00")
	if st.Bucket != "day" || len(st.Buckets) != 3 {
		t.Fatalf("8-11 March: %d %s buckets, want 3 days", len(st.Buckets), st.Bucket)
	}
	for i, b := range st.Buckets {
		from := time.Date(2025, 3, 8+i, 0, 0, 0, 0, ny)
		to := time.Date(2025, 3, 9+i, 0, 0, 0, 0, ny)
		if !b.Start.Equal(from) || b.Count != count(from, to) {
			t.Fatalf("day %d: %s with %d calls, want %s with %d", i, b.Start, b.Count, from, count(from, to))
		}
	}
	if st.Buckets[1].Count != 69 || st.Totals.Count != 72+69+72 {
		t.Fatalf("the 23-hour day counts %d calls (total %d), want 69 (213)", st.Buckets[1].Count, st.Totals.Count)
	}
}
