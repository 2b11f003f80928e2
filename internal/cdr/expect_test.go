package cdr_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/cdr"
)

// want is a call record as the test expects it, computed from the
// generated events alone.
type want struct {
	id, callID, caller, called, typ, e164 string
	connected                             bool
	start, answer, end                    time.Time
	seconds                               int64
	status                                int
}

func expected(e cdr.CallEvent) want {
	h := sha256.Sum256([]byte(e.CallID + "\x00" + e.FromTag))
	w := want{id: hex.EncodeToString(h[:12]), callID: e.CallID, caller: e.Caller, called: e.Called, typ: e.Type, e164: e.E164,
		connected: !e.Answer.IsZero(), start: e.Start, answer: e.Answer, end: e.End, status: e.Status}
	if w.typ == "" {
		w.typ = "voice"
	}
	if w.connected {
		w.seconds = int64(math.Round(e.End.Sub(e.Answer).Seconds()))
	}
	return w
}

// newestFirst orders expected records as the query must.
func newestFirst(ws []want) {
	slices.SortFunc(ws, func(a, b want) int {
		if c := b.start.Compare(a.start); c != 0 {
			return c
		}
		return strings.Compare(b.id, a.id)
	})
}

func (w want) String() string {
	return fmt.Sprintf("%s %s→%s %s connected=%v %s..%s %ds %d", w.id, w.caller, w.called, w.typ, w.connected,
		w.start.UTC().Format(time.RFC3339Nano), w.end.UTC().Format(time.RFC3339Nano), w.seconds, w.status)
}

func got(c cdr.CDR) want {
	w := want{id: c.ID, callID: c.CallID, caller: c.Caller, called: c.Called, typ: c.Type, e164: c.E164, connected: c.Connected,
		start: c.Start, seconds: c.DurationSeconds, status: c.Status}
	if c.Answer != nil {
		w.answer = *c.Answer
	}
	if c.End != nil {
		w.end = *c.End
	}
	return w
}

func same(a, b want) bool {
	return a.id == b.id && a.callID == b.callID && a.caller == b.caller && a.called == b.called && a.typ == b.typ &&
		a.e164 == b.e164 && a.connected == b.connected && a.start.Equal(b.start) && a.answer.Equal(b.answer) &&
		a.end.Equal(b.end) && a.seconds == b.seconds && a.status == b.status
}

// Records written by the generator through the recorder are queried and
// counted as computed here from the generated events, on both databases.
func TestQueryAndStatsMatchGeneratedCalls(t *testing.T) {
	eachBackend(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		db := openDB(t, dbURL)
		svc := startService(t, db, cdr.Options{TimeZone: "Asia/Shanghai", Now: func() time.Time { return now }})
		opts := cdr.GenerateOptions{Count: 3000, Days: 10, Seed: 7, Now: now, Location: shanghai, Concurrency: 64}
		sum, err := cdr.Generate(ctx, svc, opts)
		if err != nil {
			t.Fatal(err)
		}
		var all []want
		for i := range opts.Count {
			all = append(all, expected(cdr.PlanCall(opts, i)))
		}
		var video int
		for _, w := range all {
			if w.typ == "video" {
				video++
			}
		}
		if sum.Calls != opts.Count || sum.Video != video {
			t.Fatalf("summary %+v: want %d calls, %d video", sum, opts.Count, video)
		}
		if live, err := svc.Live(ctx, "", 10); err != nil || len(live.Calls) != 0 {
			t.Fatalf("live calls after generating: %v, %v; want none", live.Calls, err)
		}
		popular := mostCalled(all)
		t.Run("query", func(t *testing.T) { checkQueries(t, svc, all, popular) })
		t.Run("stats", func(t *testing.T) { checkStats(t, svc, all, popular) })
	})
}

// mostCalled is the extension called most often.
func mostCalled(all []want) string {
	n := map[string]int{}
	best := ""
	for _, w := range all {
		if w.e164 == "" {
			n[w.called]++
			if n[w.called] > n[best] {
				best = w.called
			}
		}
	}
	return best
}

func checkQueries(t *testing.T, svc *cdr.Service, all []want, popular string) {
	ctx := context.Background()
	ten := now.Add(-10 * 24 * time.Hour)
	cases := []struct {
		query string
		keep  func(w want) bool
	}{
		{"page_size=50", func(w want) bool { return inDay(w.start, now) }},
		{"start=" + rfc(ten) + "&end=" + rfc(now.Add(time.Hour)) + "&type=video&connected=true&page_size=100",
			func(w want) bool { return in(w.start, ten, now.Add(time.Hour)) && w.typ == "video" && w.connected }},
		{"start=2025-01-01T00:00:00Z&end=2025-04-01T00:00:00Z&caller=8001*&page_size=1000",
			func(w want) bool { return strings.HasPrefix(w.caller, "8001") }},
		{"start=2025-01-01T00:00:00Z&end=2025-04-01T00:00:00Z&called=" + popular + "&connected=false&page_size=3",
			func(w want) bool { return w.called == popular && !w.connected }},
		{"start=2025-02-27T00:00:00%2B08:00&end=2025-03-01T12:00:00%2B08:00&called=66*&type=voice&page_size=7",
			func(w want) bool {
				return in(w.start, time.Date(2025, 2, 27, 0, 0, 0, 0, shanghai), time.Date(2025, 3, 1, 12, 0, 0, 0, shanghai)) &&
					strings.HasPrefix(w.called, "66") && w.typ == "voice"
			}},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			var exp []want
			for _, w := range all {
				if tc.keep(w) {
					exp = append(exp, w)
				}
			}
			newestFirst(exp)
			if len(exp) < 5 {
				t.Fatalf("the case selects %d generated calls: too few to test anything", len(exp))
			}
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := svc.ParseQuery(v)
			if err != nil {
				t.Fatal(err)
			}
			var res []want
			pages := 0
			for {
				p, err := svc.Query(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(p.CDRs) > q.PageSize || (p.Next != "" && len(p.CDRs) != q.PageSize) {
					t.Fatalf("page %d holds %d records for page_size %d (next %q)", pages, len(p.CDRs), q.PageSize, p.Next)
				}
				for _, c := range p.CDRs {
					res = append(res, got(c))
				}
				if p.Next == "" {
					break
				}
				q.Page = p.Next
			}
			if len(res) != len(exp) {
				t.Fatalf("%d records in %d pages, want %d", len(res), pages, len(exp))
			}
			for i := range exp {
				if !same(res[i], exp[i]) {
					t.Fatalf("record %d:\n got %v\nwant %v", i, res[i], exp[i])
				}
			}
		})
	}
}

func rfc(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339)) }

func in(t, from, to time.Time) bool { return !t.Before(from) && t.Before(to) }

// inDay: t is on day's calendar day in Shanghai.
func inDay(t, day time.Time) bool {
	y, m, d := day.In(shanghai).Date()
	from := time.Date(y, m, d, 0, 0, 0, 0, shanghai)
	return in(t, from, from.AddDate(0, 0, 1))
}

func checkStats(t *testing.T, svc *cdr.Service, all []want, popular string) {
	ctx := context.Background()
	for _, tc := range []struct {
		query  string
		bucket string
		source string
		keep   func(w want) bool
	}{
		{"start=2025-03-04T00:00:00%2B08:00&end=2025-03-05T00:00:00%2B08:00", "hour", "rollups", nil},
		{"", "hour", "rollups", nil}, // today, the default
		{"start=2025-02-24T00:00:00%2B08:00&end=2025-03-06T00:00:00%2B08:00", "day", "rollups", nil},
		{"start=2025-02-27T10:30:00%2B08:00&end=2025-03-02T15:20:00%2B08:00", "day", "rollups", nil},
		{"start=2025-03-04T09:15:00%2B08:00&end=2025-03-04T17:45:00%2B08:00", "hour", "rollups", nil},
		{"start=2025-02-24T00:00:00%2B08:00&end=2025-03-06T00:00:00%2B08:00&type=video&connected=true", "day", "rollups",
			func(w want) bool { return w.typ == "video" && w.connected }},
		{"start=2025-03-03T00:00:00%2B08:00&end=2025-03-04T00:00:00%2B08:00&connected=false", "hour", "rollups",
			func(w want) bool { return !w.connected }},
		// By number: from the number roll-ups, exact or by a prefix of up
		// to 4 characters; hourly, daily, and over partial days; a longer
		// prefix from the records.
		{"start=2025-02-24T00:00:00%2B08:00&end=2025-03-06T00:00:00%2B08:00&caller=8001*", "day", "rollups",
			func(w want) bool { return strings.HasPrefix(w.caller, "8001") }},
		{"start=2025-03-04T00:00:00%2B08:00&end=2025-03-05T00:00:00%2B08:00&called=66*&type=video", "hour", "rollups",
			func(w want) bool { return strings.HasPrefix(w.called, "66") && w.typ == "video" }},
		{"start=2025-03-04T00:00:00%2B08:00&end=2025-03-05T00:00:00%2B08:00&caller=8*", "hour", "rollups",
			func(w want) bool { return strings.HasPrefix(w.caller, "8") }},
		{"start=2025-02-24T00:00:00%2B08:00&end=2025-03-06T00:00:00%2B08:00&caller=13*&connected=true", "day", "rollups",
			func(w want) bool { return strings.HasPrefix(w.caller, "13") && w.connected }},
		{"start=2025-02-24T00:00:00%2B08:00&end=2025-03-06T00:00:00%2B08:00&called=" + popular, "day", "rollups",
			func(w want) bool { return w.called == popular }},
		{"start=2025-02-24T00:00:00%2B08:00&end=2025-03-06T00:00:00%2B08:00&called=" + popular + "*", "day", "records",
			func(w want) bool { return strings.HasPrefix(w.called, popular) }},
		{"start=2025-02-27T10:30:00%2B08:00&end=2025-03-02T15:20:00%2B08:00&called=" + popular[:6] + "*&type=voice", "day", "records",
			func(w want) bool { return strings.HasPrefix(w.called, popular[:6]) && w.typ == "voice" }},
		{"start=2025-02-24T00:00:00%2B08:00&end=2025-03-06T00:00:00%2B08:00&called=6600001", "day", "rollups",
			func(w want) bool { return w.called == "6600001" }},
		{"start=2025-02-24T00:00:00%2B08:00&end=2025-03-06T00:00:00%2B08:00&called=6600*&connected=false", "day", "rollups",
			func(w want) bool { return strings.HasPrefix(w.called, "6600") && !w.connected }},
		// A caller and a called filter together: from the records.
		{"start=2025-02-24T00:00:00%2B08:00&end=2025-03-06T00:00:00%2B08:00&caller=800*&called=66*", "day", "records",
			func(w want) bool { return strings.HasPrefix(w.caller, "800") && strings.HasPrefix(w.called, "66") }},
	} {
		t.Run(tc.query, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := svc.ParseQuery(v)
			if err != nil {
				t.Fatal(err)
			}
			st, err := svc.Stats(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			exp := expectStats(all, q.Start, q.End, tc.keep)
			if st.Bucket != tc.bucket || exp.Bucket != tc.bucket || st.Source != tc.source {
				t.Fatalf("bucket %q from %q (computed here: %q), want %q from %q", st.Bucket, st.Source, exp.Bucket, tc.bucket, tc.source)
			}
			if !st.Start.Equal(exp.Start) || !st.End.Equal(exp.End) {
				t.Fatalf("answered %s..%s, want %s..%s", st.Start, st.End, exp.Start, exp.End)
			}
			if exp.Totals.Count < 5 {
				t.Fatalf("the case counts %d generated calls: too few to test anything", exp.Totals.Count)
			}
			if !sameBucket(st.Totals, exp.Totals) {
				t.Fatalf("totals %+v, want %+v", st.Totals, exp.Totals)
			}
			if len(st.Buckets) != len(exp.Buckets) {
				t.Fatalf("%d buckets, want %d", len(st.Buckets), len(exp.Buckets))
			}
			for i := range exp.Buckets {
				if !sameBucket(st.Buckets[i], exp.Buckets[i]) {
					t.Fatalf("bucket %d: %+v, want %+v", i, st.Buckets[i], exp.Buckets[i])
				}
			}
		})
	}
}

func sameBucket(a, b cdr.Bucket) bool {
	a.Start, b.Start = a.Start.UTC(), b.Start.UTC()
	return a == b
}

// expectStats counts the calls kept by keep that started in [start,
// end) widened to whole hours of Shanghai (which has no daylight saving
// time: its hours are whole hours of UTC), hourly for at most a day,
// else daily.
func expectStats(all []want, start, end time.Time, keep func(want) bool) cdr.Stats {
	from := start.Truncate(time.Hour)
	to := end.Truncate(time.Hour)
	if to.Before(end) {
		to = to.Add(time.Hour)
	}
	day := func(t time.Time) time.Time {
		y, m, d := t.In(shanghai).Date()
		return time.Date(y, m, d, 0, 0, 0, 0, shanghai)
	}
	st := cdr.Stats{Bucket: "hour", Start: from, End: to}
	key := func(t time.Time) time.Time { return t.Truncate(time.Hour) }
	if to.Sub(from) > 24*time.Hour {
		st.Bucket = "day"
		key = day
		for d := day(from); d.Before(to); d = d.AddDate(0, 0, 1) {
			st.Buckets = append(st.Buckets, cdr.Bucket{Start: d})
		}
	} else {
		for h := from; h.Before(to); h = h.Add(time.Hour) {
			st.Buckets = append(st.Buckets, cdr.Bucket{Start: h})
		}
	}
	st.Totals.Start = from
	for _, w := range all {
		if !in(w.start, from, to) || (keep != nil && !keep(w)) {
			continue
		}
		for i := range st.Buckets {
			if st.Buckets[i].Start.Equal(key(w.start)) {
				for _, b := range []*cdr.Bucket{&st.Buckets[i], &st.Totals} {
					b.Count++
					b.DurationSeconds += w.seconds
					c := &b.Voice
					if w.typ == "video" {
						c = &b.Video
					}
					c.Count++
					c.DurationSeconds += w.seconds
				}
			}
		}
	}
	return st
}
