package cdr

import (
	"fmt"
	"time"
)

// loadZone reads a time zone setting: an IANA name ("Asia/Shanghai"),
// "UTC", or "" for UTC.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, fmt.Errorf("%w: %q: name the zone (like Asia/Shanghai), so that every node counts the same days", ErrTimeZone, name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not a known IANA time zone (like Asia/Shanghai or UTC): %w", ErrTimeZone, name, err)
	}
	return loc, nil
}

// hourStart is the first instant of the hour of loc's clock that holds
// t. Around a change of offset the hours are those the clock shows, so
// an hour repeated when clocks go back is two buckets.
func hourStart(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return l.Add(-time.Duration(l.Minute())*time.Minute - time.Duration(l.Second())*time.Second - time.Duration(l.Nanosecond()))
}

// nextHour is the first instant of the hour after the one starting at h.
func nextHour(h time.Time, loc *time.Location) time.Time {
	n := hourStart(h.Add(time.Hour), loc)
	if !n.After(h) {
		n = h.Add(time.Hour)
	}
	return n
}

// hourCeil is t when it starts an hour, else the start of the next hour.
func hourCeil(t time.Time, loc *time.Location) time.Time {
	h := hourStart(t, loc)
	if h.Equal(t) {
		return h
	}
	return nextHour(h, loc)
}

// dayStart is midnight of t's day in loc, or, where the clocks skip
// midnight, the instant they jump to.
func dayStart(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return firstInstant(y, m, d, loc)
}

// nextDay is the first instant of the day after the one starting at d.
func nextDay(d time.Time, loc *time.Location) time.Time {
	y, m, dd := d.In(loc).Date()
	return firstInstant(y, m, dd+1, loc)
}

// firstInstant is the first instant of a day: midnight, or, when the
// clocks jump over midnight, the jump (time.Date gives an instant of the
// day before for a skipped midnight).
func firstInstant(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if _, _, got := t.Date(); got != time.Date(y, m, d, 12, 0, 0, 0, loc).Day() {
		if _, end := t.ZoneBounds(); !end.IsZero() {
			return end.In(loc)
		}
	}
	return t
}
