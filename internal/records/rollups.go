package records

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Roll-up grains.
const (
	GrainHour = "hour"
	GrainDay  = "day"
)

// Rollup counts the ended calls of one type and connected state that
// started in one hour or day.
type Rollup struct {
	Grain           string    // GrainHour or GrainDay
	Bucket          time.Time // the hour's or day's first instant
	Type            string
	Connected       bool
	Calls           int64
	DurationSeconds int64
}

type rollupKey struct {
	grain     string
	bucket    int64
	typ       string
	connected bool
}

type rollupSum struct{ calls, seconds int64 }

// rollups adds up a batch's records before they are written: one upsert
// per key, whatever the number of calls.
type rollups struct {
	totals  map[rollupKey]rollupSum
	numbers map[numberKey]rollupSum
}

// add counts c in the hour and day buckets gives for its start, in all
// and under its numbers.
func (r *rollups) add(c Call, buckets Buckets) {
	hour, day := buckets(c.Start)
	r.addTotals(c, hour, day)
	r.addNumbers(c, hour, day)
}

func (r *rollups) addTotals(c Call, hour, day time.Time) {
	if r.totals == nil {
		r.totals = map[rollupKey]rollupSum{}
	}
	for _, k := range []rollupKey{{GrainHour, ms(hour), c.Type, c.Connected}, {GrainDay, ms(day), c.Type, c.Connected}} {
		s := r.totals[k]
		s.calls++
		s.seconds += c.DurationSeconds
		r.totals[k] = s
	}
}

// write adds the sums to the stored roll-ups, the totals first, each
// table's keys in order (the order every writer takes the rows in).
func (r *rollups) write(ctx context.Context, tx *batchTx) error {
	if err := r.writeTotals(ctx, tx); err != nil {
		return err
	}
	return r.writeNumbers(ctx, tx)
}

func (r *rollups) writeTotals(ctx context.Context, tx *batchTx) error {
	keys := make([]rollupKey, 0, len(r.totals))
	for k := range r.totals {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b rollupKey) int {
		if c := strings.Compare(a.grain, b.grain); c != 0 {
			return c
		}
		if a.bucket != b.bucket {
			return cmpInt(a.bucket, b.bucket)
		}
		if c := strings.Compare(a.typ, b.typ); c != 0 {
			return c
		}
		return cmpBool(a.connected, b.connected)
	})
	const n = 6
	for chunk := range slices.Chunk(keys, maxRows) {
		args := make([]any, 0, n*len(chunk))
		for _, k := range chunk {
			s := r.totals[k]
			args = append(args, k.grain, k.bucket, k.typ, k.connected, s.calls, s.seconds)
		}
		_, err := tx.exec(ctx, `INSERT INTO call_rollups (grain, bucket, type, connected, calls, duration_seconds)
			VALUES `+rowParams(len(chunk), n)+`
			ON CONFLICT (grain, bucket, type, connected) DO UPDATE SET
				calls = call_rollups.calls + excluded.calls,
				duration_seconds = call_rollups.duration_seconds + excluded.duration_seconds`, args...)
		if err != nil {
			return err
		}
	}
	return nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// Rollups returns the roll-ups of grain whose bucket is in [from, to),
// in bucket order.
func (db *DB) Rollups(ctx context.Context, grain string, from, to time.Time) ([]Rollup, error) {
	return db.queryRollups(ctx, "roll-ups", grain, `SELECT bucket, type, connected, calls, duration_seconds FROM call_rollups
		WHERE grain = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket, type, connected`, grain, ms(from), ms(to))
}

// queryRollups runs a roll-up query whose rows are bucket, type,
// connected, calls and duration_seconds, and reads them as roll-ups of
// grain; what names the query in errors.
func (db *DB) queryRollups(ctx context.Context, what, grain, query string, args ...any) ([]Rollup, error) {
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("records: %s: %w", what, err)
	}
	defer rows.Close()
	var out []Rollup
	for rows.Next() {
		r := Rollup{Grain: grain}
		var bucket int64
		if err := rows.Scan(&bucket, &r.Type, &r.Connected, &r.Calls, &r.DurationSeconds); err != nil {
			return nil, fmt.Errorf("records: %s: %w", what, err)
		}
		r.Bucket = fromMs(bucket)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("records: %s: %w", what, err)
	}
	return out, nil
}

// rollupZoneSetting names the time zone the roll-ups' days are counted in.
const rollupZoneSetting = "rollup_time_zone"

// ClaimRollupZone records zone as the time zone of the roll-ups unless
// one is recorded already, and returns the one recorded: the roll-ups
// of a database are kept in one zone, whichever node writes them.
func (db *DB) ClaimRollupZone(ctx context.Context, zone string) (string, error) {
	if _, err := db.w.ExecContext(ctx, `INSERT INTO call_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		rollupZoneSetting, zone); err != nil {
		return "", fmt.Errorf("records: roll-up time zone: %w", err)
	}
	var stored string
	if err := db.w.QueryRowContext(ctx, `SELECT value FROM call_settings WHERE name = $1`, rollupZoneSetting).Scan(&stored); err != nil {
		return "", fmt.Errorf("records: roll-up time zone: %w", err)
	}
	return stored, nil
}

// rebuildPage is the records one step of RebuildRollups reads.
const rebuildPage = 5000

// RebuildRollups counts the roll-ups (in all and by number) again from
// the call records, in buckets (of the time zone zone, which it
// records), in one transaction: for a change of time zone, or a repair.
// It reads every record; on PostgreSQL, writers of other processes wait
// for it at their roll-ups (so none of their calls is counted twice or
// missed), and should use the same zone.
func (db *DB) RebuildRollups(ctx context.Context, zone string, buckets Buckets) error {
	sqlTx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, db.shown, err)
	}
	defer func() { _ = sqlTx.Rollback() }()
	tx := &batchTx{tx: sqlTx, dialect: db.dialect}
	if db.dialect == Postgres {
		// In the order writers take them: the totals, then the numbers.
		if _, err := tx.exec(ctx, `LOCK TABLE call_rollups, call_number_rollups IN EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("records: rebuild roll-ups: %w", err)
		}
	}
	if _, err := recount(ctx, tx, buckets, true); err != nil {
		return fmt.Errorf("records: rebuild roll-ups: %w", err)
	}
	if _, err := tx.exec(ctx, `DELETE FROM call_settings WHERE name = $1`, numberBackfillSetting); err != nil {
		return fmt.Errorf("records: rebuild roll-ups: %w", err)
	}
	if _, err := tx.exec(ctx, `INSERT INTO call_settings (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, rollupZoneSetting, zone); err != nil {
		return fmt.Errorf("records: rebuild roll-ups: %w", err)
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("records: rebuild roll-ups: commit: %w", err)
	}
	return nil
}
