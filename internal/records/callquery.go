package records

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// CallFilter selects call records by their start and fields. The zero
// value selects every record.
type CallFilter struct {
	From, To  time.Time // start in [From, To); a zero bound is open
	Type      string    // "" for any
	Connected *bool     // nil for any
	Caller    Match
	Called    Match
	// After continues a listing: records after this one in the order
	// newest first (start descending, then id descending).
	After *CallCursor
	Limit int // at most this many; 0 for no limit
}

// Match is a text field's value, or its prefix; the zero value matches
// anything. Both compare bytes.
type Match struct {
	Value  string
	Prefix bool
}

// CallCursor is a position in the newest-first order of calls.
type CallCursor struct {
	Start time.Time
	ID    string
}

// where renders the filter as SQL conditions over its arguments.
func (f CallFilter) where() (string, []any) {
	var (
		conds []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if !f.From.IsZero() {
		conds = append(conds, "start_at >= "+arg(ms(f.From)))
	}
	if !f.To.IsZero() {
		conds = append(conds, "start_at < "+arg(ms(f.To)))
	}
	if f.Type != "" {
		conds = append(conds, "type = "+arg(f.Type))
	}
	if f.Connected != nil {
		conds = append(conds, "connected = "+arg(*f.Connected))
	}
	for _, m := range []struct {
		col string
		m   Match
	}{{"caller", f.Caller}, {"called", f.Called}} {
		switch {
		case m.m.Prefix && m.m.Value == "":
		case m.m.Prefix:
			conds = append(conds, m.col+" >= "+arg(m.m.Value))
			if end, ok := prefixEnd(m.m.Value); ok {
				conds = append(conds, m.col+" < "+arg(end))
			}
		case m.m.Value != "":
			conds = append(conds, m.col+" = "+arg(m.m.Value))
		}
	}
	if f.After != nil {
		s := arg(ms(f.After.Start))
		conds = append(conds, "start_at <= "+s, "(start_at < "+s+" OR id < "+arg(f.After.ID)+")")
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// prefixEnd is the least string greater than every string that starts
// with p, in byte order, itself valid UTF-8 (PostgreSQL takes nothing
// else): p with its last character replaced by the next one; false when
// there is none (p is all U+10FFFF).
func prefixEnd(p string) (string, bool) {
	for p != "" {
		r, size := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-size]
		switch {
		case r == utf8.MaxRune || r == utf8.RuneError && size <= 1:
			continue
		case r == 0xD7FF:
			return p + string(rune(0xE000)), true
		}
		return p + string(r+1), true
	}
	return "", false
}

// CallRecords lists the call records f selects, newest first (start
// descending, then id descending).
func (db *DB) CallRecords(ctx context.Context, f CallFilter) ([]Call, error) {
	where, args := f.where()
	q := `SELECT ` + recordCols + ` FROM call_records` + where + ` ORDER BY start_at DESC, id DESC`
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += " LIMIT $" + strconv.Itoa(len(args))
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("records: call records: %w", err)
	}
	defer rows.Close()
	var out []Call
	for rows.Next() {
		c, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("records: call records: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("records: call records: %w", err)
	}
	return out, nil
}

// CallSummaries calls fn with the start, type, connected and duration of
// each record f selects (After and Limit aside), in no particular order,
// and stops at fn's first error, which it returns.
func (db *DB) CallSummaries(ctx context.Context, f CallFilter, fn func(Call) error) error {
	f.After, f.Limit = nil, 0
	where, args := f.where()
	rows, err := db.r.QueryContext(ctx, `SELECT start_at, type, connected, duration_seconds FROM call_records`+where, args...)
	if err != nil {
		return fmt.Errorf("records: call summaries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			c     Call
			start int64
		)
		if err := rows.Scan(&start, &c.Type, &c.Connected, &c.DurationSeconds); err != nil {
			return fmt.Errorf("records: call summaries: %w", err)
		}
		c.Start = fromMs(start)
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("records: call summaries: %w", err)
	}
	return nil
}

// CallRecord reads one call record. Errors: ErrNotFound.
func (db *DB) CallRecord(ctx context.Context, id string) (Call, error) {
	c, err := scanRecord(db.r.QueryRowContext(ctx, `SELECT `+recordCols+` FROM call_records WHERE id = $1`, id))
	return c, keyed(err, "call record", id)
}

// LiveCall reads one live call. Errors: ErrNotFound (never started, or
// ended).
func (db *DB) LiveCall(ctx context.Context, id string) (Call, error) {
	c, err := scanLive(db.r.QueryRowContext(ctx, `SELECT `+liveCols+` FROM live_calls WHERE id = $1`, id))
	return c, keyed(err, "live call", id)
}

// LiveCalls lists live calls newest first, after the cursor when one is
// given, at most limit of them (0: all).
func (db *DB) LiveCalls(ctx context.Context, after *CallCursor, limit int) ([]Call, error) {
	q, args := `SELECT `+liveCols+` FROM live_calls`, []any{}
	if after != nil {
		q += ` WHERE start_at <= $1 AND (start_at < $1 OR id < $2)`
		args = append(args, ms(after.Start), after.ID)
	}
	q += ` ORDER BY start_at DESC, id DESC`
	if limit > 0 {
		args = append(args, limit)
		q += " LIMIT $" + strconv.Itoa(len(args))
	}
	return db.scanLiveCalls(ctx, "live calls", q, args...)
}

// StaleLiveCalls lists, oldest first, up to limit live calls that
// started before before: calls whose end nobody saw.
func (db *DB) StaleLiveCalls(ctx context.Context, before time.Time, limit int) ([]Call, error) {
	return db.scanLiveCalls(ctx, "stale live calls",
		`SELECT `+liveCols+` FROM live_calls WHERE start_at < $1 ORDER BY start_at, id LIMIT $2`, ms(before), limit)
}

func (db *DB) scanLiveCalls(ctx context.Context, what, q string, args ...any) ([]Call, error) {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("records: %s: %w", what, err)
	}
	defer rows.Close()
	var out []Call
	for rows.Next() {
		c, err := scanLive(rows)
		if err != nil {
			return nil, fmt.Errorf("records: %s: %w", what, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("records: %s: %w", what, err)
	}
	return out, nil
}
