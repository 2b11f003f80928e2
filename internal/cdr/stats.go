package cdr

import (
	"context"
	"time"

	"github.com/convene/convene/internal/records"
)

// Statistics granularity, and where they were read from.
const (
	BucketHour = records.GrainHour
	BucketDay  = records.GrainDay

	SourceRollups = "rollups"
	SourceRecords = "records"
)

// maxStatsDays bounds the range of statistics (one bucket a day).
const maxStatsDays = 3660

// Counts are a number of calls and their total duration.
type Counts struct {
	Count           int64 `json:"count"`
	DurationSeconds int64 `json:"duration_seconds"`
}

// Bucket counts the calls that started in one hour or day (the totals:
// in the whole range), in all and per type.
type Bucket struct {
	Start           time.Time `json:"start"`
	Count           int64     `json:"count"`
	DurationSeconds int64     `json:"duration_seconds"`
	Voice           Counts    `json:"voice"`
	Video           Counts    `json:"video"`
}

func (b *Bucket) add(typ string, calls, seconds int64) {
	b.Count += calls
	b.DurationSeconds += seconds
	switch typ {
	case Voice:
		b.Voice.Count += calls
		b.Voice.DurationSeconds += seconds
	case Video:
		b.Video.Count += calls
		b.Video.DurationSeconds += seconds
	}
}

// Stats are the statistics of a query: {"bucket":"hour"|"day",
// "totals":{...},"buckets":[...]}, the buckets' counts adding up to the
// totals. Start and End are the range answered: the query's, widened to
// whole hours of the time zone (the roll-ups' resolution).
type Stats struct {
	Bucket   string    `json:"bucket"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	TimeZone string    `json:"time_zone"`
	Source   string    `json:"source"`
	Totals   Bucket    `json:"totals"`
	Buckets  []Bucket  `json:"buckets"`
}

// Stats counts the ended calls q selects (its page aside) that started in
// its range, widened to whole hours: in one bucket per hour when the
// range is one day or less, per day when longer (a range that starts or
// ends inside a day has that day's bucket count only its hours in range).
//
// The answer is read from the roll-ups: the hourly ones for partial
// days, the daily ones for whole days, filtered by type and connected,
// which they are keyed by; its cost does not grow with the number of
// calls. A caller or a called filter reads the number roll-ups, keyed
// also by each number and each of its prefixes up to
// records.MaxRollupPrefix characters (whose days, for a number or a
// prefix longer than records.MaxDailyPrefix, are the rows of their
// hours with calls). A longer prefix, or a caller and a
// called filter together, is counted from the call records it selects,
// read through the caller's or called number's index (an exact number or
// a prefix is a range of it, never a scan of the table): its cost grows
// with the calls of those numbers in the range. Source says which was
// used.
func (s *Service) Stats(ctx context.Context, q Query) (Stats, error) {
	from, to := hourStart(q.Start, s.loc), hourCeil(q.End, s.loc)
	if to.Sub(from) > maxStatsDays*24*time.Hour {
		return Stats{}, paramErr("end", "statistics cover at most %d days: narrow the range", maxStatsDays)
	}
	st := Stats{Bucket: BucketHour, Start: from.In(s.loc), End: to.In(s.loc), TimeZone: s.loc.String(), Source: SourceRollups}
	if to.After(from.In(s.loc).AddDate(0, 0, 1)) {
		st.Bucket = BucketDay
	}
	index := map[int64]int{} // bucket start (ms) → position in st.Buckets
	bucketOf := func(t time.Time) time.Time { return hourStart(t, s.loc) }
	if st.Bucket == BucketHour {
		for h := from; h.Before(to); h = nextHour(h, s.loc) {
			index[h.UnixMilli()] = len(st.Buckets)
			st.Buckets = append(st.Buckets, Bucket{Start: h.In(s.loc)})
		}
	} else {
		bucketOf = func(t time.Time) time.Time { return dayStart(t, s.loc) }
		for d := dayStart(from, s.loc); d.Before(to); d = nextDay(d, s.loc) {
			index[d.UnixMilli()] = len(st.Buckets)
			st.Buckets = append(st.Buckets, Bucket{Start: d})
		}
	}
	st.Totals.Start = st.Start
	add := func(start time.Time, typ string, connected bool, calls, seconds int64) {
		if (q.Type != "" && typ != q.Type) || (q.Connected != nil && connected != *q.Connected) {
			return
		}
		i, ok := index[bucketOf(start).UnixMilli()]
		if !ok {
			return // outside the range: not asked for
		}
		st.Buckets[i].add(typ, calls, seconds)
		st.Totals.add(typ, calls, seconds)
	}

	read := func(grain string, from, to time.Time) ([]records.Rollup, error) {
		return s.db.Rollups(ctx, grain, from, to)
	}
	switch side, m, ok := numberFilter(q); {
	case ok:
		read = func(grain string, from, to time.Time) ([]records.Rollup, error) {
			return s.db.NumberRollups(ctx, side, m, grain, from, to)
		}
	case !q.Caller.any() || !q.Called.any():
		st.Source = SourceRecords
		f := q.filter()
		f.From, f.To = from, to
		err := s.db.CallSummaries(ctx, f, func(c records.Call) error {
			add(c.Start, c.Type, c.Connected, 1, c.DurationSeconds)
			return nil
		})
		return st, err
	}
	for _, part := range s.rollupParts(st.Bucket, from, to) {
		rows, err := read(part.grain, part.from, part.to)
		if err != nil {
			return Stats{}, err
		}
		for _, r := range rows {
			add(r.Bucket, r.Type, r.Connected, r.Calls, r.DurationSeconds)
		}
	}
	return st, nil
}

// numberFilter is the one number q filters by, when the number roll-ups
// count it: a caller or a called number (not both), exact or a prefix of
// at most records.MaxRollupPrefix characters.
func numberFilter(q Query) (side string, m records.Match, ok bool) {
	switch {
	case !q.Caller.any() && q.Called.any():
		side, m = records.SideCaller, q.Caller.match()
	case q.Caller.any() && !q.Called.any():
		side, m = records.SideCalled, q.Called.match()
	default:
		return "", records.Match{}, false
	}
	return side, m, records.NumberRollupsAnswer(m)
}

type rollupPart struct {
	grain    string
	from, to time.Time
}

// rollupParts covers [from, to) with the fewest roll-up rows: hours for
// an hourly answer; for a daily one, whole days from the daily
// roll-ups, and the hours of a partial first or last day from the hourly.
func (s *Service) rollupParts(bucket string, from, to time.Time) []rollupPart {
	if bucket == BucketHour {
		return []rollupPart{{records.GrainHour, from, to}}
	}
	first := dayStart(from, s.loc)
	if first.Before(from) {
		first = nextDay(first, s.loc)
	}
	last := dayStart(to, s.loc)
	if !first.Before(last) {
		return []rollupPart{{records.GrainHour, from, to}}
	}
	var parts []rollupPart
	if from.Before(first) {
		parts = append(parts, rollupPart{records.GrainHour, from, first})
	}
	parts = append(parts, rollupPart{records.GrainDay, first, last})
	if last.Before(to) {
		parts = append(parts, rollupPart{records.GrainHour, last, to})
	}
	return parts
}
