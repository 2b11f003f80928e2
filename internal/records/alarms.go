package records

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Alarm is an alarm the alarm service raised: what it is about (Kind and
// Subject), how bad (Severity: critical, major or minor), when it was
// raised and cleared (zero while active), and whether an operator
// acknowledged it. Times are kept to the millisecond.
type Alarm struct {
	ID        string
	Kind      string
	Subject   string
	Severity  string
	RaisedAt  time.Time
	ClearedAt time.Time
	Acked     bool
	AckedAt   time.Time
}

// Active reports whether the alarm has not cleared.
func (a Alarm) Active() bool { return a.ClearedAt.IsZero() }

// MaxAlarmField is the longest id, kind or subject an alarm may have.
const MaxAlarmField = 256

func (a Alarm) check() error {
	switch {
	case a.ID == "" || len(a.ID) > MaxAlarmField:
		return fmt.Errorf("%w: alarm id %q: give 1 to %d bytes", ErrInvalid, a.ID, MaxAlarmField)
	case a.Kind == "" || len(a.Kind) > MaxAlarmField, a.Subject == "" || len(a.Subject) > MaxAlarmField:
		return fmt.Errorf("%w: alarm %s: kind and subject need 1 to %d bytes each", ErrInvalid, a.ID, MaxAlarmField)
	case a.Severity != "critical" && a.Severity != "major" && a.Severity != "minor":
		return fmt.Errorf("%w: alarm %s: severity %q is none of critical, major, minor", ErrInvalid, a.ID, a.Severity)
	case a.RaisedAt.IsZero():
		return fmt.Errorf("%w: alarm %s has no time it was raised", ErrInvalid, a.ID)
	}
	return nil
}

const alarmCols = `id, kind, subject, severity, raised_at, cleared_at, acked, acked_at`

func scanAlarm(r rowScanner) (Alarm, error) {
	var (
		a                        Alarm
		raised, cleared, ackedAt int64
	)
	if err := r.Scan(&a.ID, &a.Kind, &a.Subject, &a.Severity, &raised, &cleared, &a.Acked, &ackedAt); err != nil {
		return Alarm{}, errNoRow(err)
	}
	a.RaisedAt, a.ClearedAt, a.AckedAt = fromMs(raised), fromMs(cleared), fromMs(ackedAt)
	return a, nil
}

// RaiseAlarm records a raised alarm and returns the alarm recorded for
// its cause: a itself, or, when an alarm of the same kind and subject is
// active already (raised before a restart, or by a write whose reply was
// lost), that one, unchanged. Raising the same alarm again changes
// nothing. A given ClearedAt is recorded as well (an alarm that cleared
// before it could be written). Errors: ErrInvalid.
func (db *DB) RaiseAlarm(ctx context.Context, a Alarm) (Alarm, error) {
	if err := a.check(); err != nil {
		return Alarm{}, err
	}
	for range casAttempts {
		_, err := db.w.ExecContext(ctx, `INSERT INTO alarms (`+alarmCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT DO NOTHING`,
			a.ID, a.Kind, a.Subject, a.Severity, ms(a.RaisedAt), ms(a.ClearedAt), a.Acked, ms(a.AckedAt))
		if err != nil {
			return Alarm{}, keyed(err, "raise alarm", a.ID)
		}
		stored, err := db.Alarm(ctx, a.ID)
		if !errors.Is(err, ErrNotFound) {
			return stored, err
		}
		// Another alarm of this cause is active: that one stands.
		stored, err = scanAlarm(db.r.QueryRowContext(ctx, `SELECT `+alarmCols+` FROM alarms
			WHERE kind = $1 AND subject = $2 AND cleared_at = 0`, a.Kind, a.Subject))
		if !errors.Is(err, ErrNotFound) {
			return stored, keyed(err, "raise alarm", a.ID)
		}
		// It cleared meanwhile: try again.
	}
	return Alarm{}, fmt.Errorf("%w: alarm %s/%s kept changing under %d attempts to raise it", ErrConflict, a.Kind, a.Subject, casAttempts)
}

// ClearAlarm records that the alarm id cleared at at, and returns it. An
// alarm cleared already keeps its first time. Errors: ErrNotFound.
func (db *DB) ClearAlarm(ctx context.Context, id string, at time.Time) (Alarm, error) {
	if at.IsZero() {
		return Alarm{}, fmt.Errorf("%w: alarm %s: clearing needs a time", ErrInvalid, id)
	}
	if _, err := db.w.ExecContext(ctx, `UPDATE alarms SET cleared_at = $2 WHERE id = $1 AND cleared_at = 0`, id, ms(at)); err != nil {
		return Alarm{}, keyed(err, "clear alarm", id)
	}
	return db.Alarm(ctx, id)
}

// AckAlarm records that an operator acknowledged the alarm id at at, and
// returns it. An alarm acknowledged already keeps its first time.
// Errors: ErrNotFound.
func (db *DB) AckAlarm(ctx context.Context, id string, at time.Time) (Alarm, error) {
	if at.IsZero() {
		return Alarm{}, fmt.Errorf("%w: alarm %s: acknowledging needs a time", ErrInvalid, id)
	}
	if _, err := db.w.ExecContext(ctx, `UPDATE alarms SET acked = TRUE, acked_at = $2 WHERE id = $1 AND NOT acked`, id, ms(at)); err != nil {
		return Alarm{}, keyed(err, "acknowledge alarm", id)
	}
	return db.Alarm(ctx, id)
}

// Alarm reads one alarm. Errors: ErrNotFound.
func (db *DB) Alarm(ctx context.Context, id string) (Alarm, error) {
	a, err := scanAlarm(db.r.QueryRowContext(ctx, `SELECT `+alarmCols+` FROM alarms WHERE id = $1`, id))
	return a, keyed(err, "alarm", id)
}

// Alarms lists alarms, the latest raised first: the active ones only, or
// all of them (history included); at most limit (0: no limit).
func (db *DB) Alarms(ctx context.Context, activeOnly bool, limit int) ([]Alarm, error) {
	q := `SELECT ` + alarmCols + ` FROM alarms`
	if activeOnly {
		q += ` WHERE cleared_at = 0`
	}
	q += ` ORDER BY raised_at DESC, id DESC`
	var args []any
	if limit > 0 {
		q += ` LIMIT $1`
		args = append(args, limit)
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("records: list alarms: %w", err)
	}
	defer rows.Close()
	var out []Alarm
	for rows.Next() {
		a, err := scanAlarm(rows)
		if err != nil {
			return nil, fmt.Errorf("records: list alarms: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("records: list alarms: %w", err)
	}
	return out, nil
}
