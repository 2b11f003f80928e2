package records

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Sides of a call a number roll-up counts by.
const (
	SideCaller = "caller"
	SideCalled = "called"
)

// MaxRollupPrefix is the longest prefix, in characters, the number
// roll-ups count: a prefix filter up to this long is one roll-up row per
// bucket, a longer one is counted from the records (through the number's
// index: a longer prefix selects fewer calls). Four covers a branch
// (8001), a conference range (6600) and a mobile operator (138). Each
// character more adds up to two rows per side to every call's end, which
// the calls of a batch rarely share once the prefix is longer than the
// branch: at eight, SQLite wrote half as many calls a second.
const MaxRollupPrefix = 4

// MaxDailyPrefix is the longest prefix the number roll-ups also count
// per day. The hourly rows of a short prefix are many (it has calls
// every hour) and its daily rows cheap to write (the calls of a batch
// share them); a longer prefix or a number has a row only in the hours
// of its calls, few enough to read for days, and daily rows of its own
// would add a write per call.
const MaxDailyPrefix = 4

// numberKey is a roll-up row of the calls whose caller or called number
// (side) is number (exact) or starts with it.
type numberKey struct {
	side      string
	number    string
	exact     bool
	grain     string
	bucket    int64
	typ       string
	connected bool
}

// numberPrefixes calls f with each prefix of n the roll-ups count, and
// its length in characters: the first 1 to MaxRollupPrefix characters
// (n itself when it is that short).
func numberPrefixes(n string, f func(prefix string, chars int)) {
	chars := 0
	for i := range n { // i: where each character starts
		if i == 0 {
			continue
		}
		chars++
		f(n[:i], chars)
		if chars == MaxRollupPrefix {
			return
		}
	}
	if n != "" {
		f(n, chars+1)
	}
}

// addNumbers counts c under its caller's and called number's prefixes
// and exact numbers, in the hour and day of its start.
func (r *rollups) addNumbers(c Call, hour, day time.Time) {
	if r.numbers == nil {
		r.numbers = map[numberKey]rollupSum{}
	}
	count := func(k numberKey, grain string, bucket time.Time) {
		k.grain, k.bucket = grain, ms(bucket)
		s := r.numbers[k]
		s.calls++
		s.seconds += c.DurationSeconds
		r.numbers[k] = s
	}
	for _, side := range [...]struct{ name, number string }{{SideCaller, c.Caller}, {SideCalled, c.Called}} {
		if side.number == "" {
			continue
		}
		k := numberKey{side: side.name, typ: c.Type, connected: c.Connected}
		numberPrefixes(side.number, func(p string, chars int) {
			k.number, k.exact = p, false
			count(k, GrainHour, hour)
			if chars <= MaxDailyPrefix {
				count(k, GrainDay, day)
			}
		})
		k.number, k.exact = side.number, true
		count(k, GrainHour, hour)
	}
}

func compareNumberKeys(a, b numberKey) int {
	if c := strings.Compare(a.side, b.side); c != 0 {
		return c
	}
	if c := strings.Compare(a.number, b.number); c != 0 {
		return c
	}
	if c := cmpBool(a.exact, b.exact); c != 0 {
		return c
	}
	if c := strings.Compare(a.grain, b.grain); c != 0 {
		return c
	}
	if c := cmpInt(a.bucket, b.bucket); c != 0 {
		return c
	}
	if c := strings.Compare(a.typ, b.typ); c != 0 {
		return c
	}
	return cmpBool(a.connected, b.connected)
}

// writeNumbers adds the number sums to the stored roll-ups, keys in
// order (the order of the table's key, which every writer takes the rows
// in).
func (r *rollups) writeNumbers(ctx context.Context, tx *batchTx) error {
	keys := make([]numberKey, 0, len(r.numbers))
	for k := range r.numbers {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareNumberKeys)
	const n = 9
	for chunk := range slices.Chunk(keys, maxRows) {
		args := make([]any, 0, n*len(chunk))
		for _, k := range chunk {
			s := r.numbers[k]
			args = append(args, k.side, k.number, k.exact, k.grain, k.bucket, k.typ, k.connected, s.calls, s.seconds)
		}
		_, err := tx.exec(ctx, `INSERT INTO call_number_rollups (side, number, exact, grain, bucket, type, connected, calls, duration_seconds)
			VALUES `+rowParams(len(chunk), n)+`
			ON CONFLICT (side, number, exact, grain, bucket, type, connected) DO UPDATE SET
				calls = call_number_rollups.calls + excluded.calls,
				duration_seconds = call_number_rollups.duration_seconds + excluded.duration_seconds`, args...)
		if err != nil {
			return err
		}
	}
	return nil
}

// rowParamTexts holds the texts of rowParams, by rows and columns.
var rowParamTexts sync.Map

// rowParams is "($1, ..., $n), ($n+1, ..., $2n), ..." for rows rows of
// n columns: made once per shape, as the statements of a batch are made
// many times.
func rowParams(rows, n int) string {
	key := [2]int{rows, n}
	if s, ok := rowParamTexts.Load(key); ok {
		return s.(string)
	}
	var b strings.Builder
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + params(i*n+1, n) + ")")
	}
	rowParamTexts.Store(key, b.String())
	return b.String()
}

// NumberRollupsAnswer reports whether the number roll-ups count the calls
// m selects: an exact number, or a prefix of 1 to MaxRollupPrefix
// characters.
func NumberRollupsAnswer(m Match) bool {
	return m.Value != "" && utf8.ValidString(m.Value) && (!m.Prefix || utf8.RuneCountInString(m.Value) <= MaxRollupPrefix)
}

// NumberRollups returns the roll-ups of grain whose bucket is in [from,
// to) of the calls whose side (SideCaller or SideCalled) number m
// selects, in bucket order. Days of a number, or of a prefix longer than
// MaxDailyPrefix, are their hours: the hourly roll-ups of the range
// (their Grain says so). Errors: ErrInvalid when the roll-ups do not
// count m (see NumberRollupsAnswer).
func (db *DB) NumberRollups(ctx context.Context, side string, m Match, grain string, from, to time.Time) ([]Rollup, error) {
	if (side != SideCaller && side != SideCalled) || !NumberRollupsAnswer(m) {
		return nil, fmt.Errorf("%w: number roll-ups count a caller or called number, or a prefix of 1 to %d characters", ErrInvalid, MaxRollupPrefix)
	}
	if grain == GrainDay && (!m.Prefix || utf8.RuneCountInString(m.Value) > MaxDailyPrefix) {
		grain = GrainHour
	}
	return db.queryRollups(ctx, "number roll-ups", grain, `SELECT bucket, type, connected, calls, duration_seconds FROM call_number_rollups
		WHERE side = $1 AND number = $2 AND exact = $3 AND grain = $4 AND bucket >= $5 AND bucket < $6
		ORDER BY bucket, type, connected`, side, m.Value, !m.Prefix, grain, ms(from), ms(to))
}

// numberBackfillSetting, in call_settings, says that the number roll-ups
// of the records written before they existed are still to be counted:
// the migration that adds them sets it when there are records.
const numberBackfillSetting = "number_rollups_backfill"

// BackfillNumberRollups counts the number roll-ups from the call records
// (in the buckets buckets gives) when the database was upgraded from a
// version without them and they have not been counted yet; otherwise it
// does nothing. It runs once per database, in one transaction, whichever
// node starts first: on PostgreSQL, writers of other nodes wait for it
// at their number roll-ups, so none of their calls is counted twice or
// missed. It reads every record, so it may take a minute for millions.
func (db *DB) BackfillNumberRollups(ctx context.Context, buckets Buckets) error {
	var pending int
	if err := db.w.QueryRowContext(ctx, `SELECT count(*) FROM call_settings WHERE name = $1`, numberBackfillSetting).Scan(&pending); err != nil {
		return fmt.Errorf("%w: %s: number roll-ups: %w", ErrUnavailable, db.shown, err)
	}
	if pending == 0 {
		return nil
	}
	began := time.Now()
	sqlTx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, db.shown, err)
	}
	defer func() { _ = sqlTx.Rollback() }()
	tx := &batchTx{tx: sqlTx, dialect: db.dialect}
	if db.dialect == Postgres {
		if _, err := tx.exec(ctx, `LOCK TABLE call_number_rollups IN EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("records: number roll-ups backfill: %w", err)
		}
	}
	res, err := tx.exec(ctx, `DELETE FROM call_settings WHERE name = $1`, numberBackfillSetting)
	if err != nil {
		return fmt.Errorf("records: number roll-ups backfill: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("records: number roll-ups backfill: %w", err)
	}
	if n == 0 {
		return nil // another node counted them meanwhile
	}
	db.log.Info("records: counting the number roll-ups of the existing call records (once, after the upgrade)")
	calls, err := recount(ctx, tx, buckets, false)
	if err != nil {
		return fmt.Errorf("records: number roll-ups backfill: %w", err)
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("records: number roll-ups backfill: commit: %w", err)
	}
	db.log.Info("records: number roll-ups counted", "calls", calls, "elapsed", time.Since(began).Round(time.Millisecond))
	return nil
}

// recount empties the number roll-ups (and, with totals, the others) and
// counts them again from every call record, a page at a time; it
// returns the number of records read.
func recount(ctx context.Context, tx *batchTx, buckets Buckets, totals bool) (int, error) {
	if totals {
		if _, err := tx.exec(ctx, `DELETE FROM call_rollups`); err != nil {
			return 0, err
		}
	}
	if _, err := tx.exec(ctx, `DELETE FROM call_number_rollups`); err != nil {
		return 0, err
	}
	var (
		after string
		total int
	)
	for {
		roll := rollups{}
		rows, err := tx.query(ctx, `SELECT id, start_at, type, connected, duration_seconds, caller, called FROM call_records
			WHERE id > $1 ORDER BY id LIMIT $2`, after, rebuildPage)
		if err != nil {
			return total, err
		}
		n := 0
		for rows.Next() {
			var (
				c     Call
				start int64
			)
			if err := rows.Scan(&c.ID, &start, &c.Type, &c.Connected, &c.DurationSeconds, &c.Caller, &c.Called); err != nil {
				rows.Close()
				return total, err
			}
			c.Start = fromMs(start)
			hour, day := buckets(c.Start)
			if totals {
				roll.addTotals(c, hour, day)
			}
			roll.addNumbers(c, hour, day)
			after = c.ID
			n++
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return total, err
		}
		total += n
		if err := roll.write(ctx, tx); err != nil {
			return total, err
		}
		if n < rebuildPage {
			return total, nil
		}
	}
}
