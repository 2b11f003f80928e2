package records

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Kind is what a callable number is, the seed's EConfType (000 §7.3): the
// values are the seed's and the registry's.
type Kind int

const (
	KindInstant  Kind = 1 // INSTANT: a running conference (kept in the store, not here)
	KindReserve  Kind = 2 // RESERVE: a scheduled conference
	KindTemplate Kind = 3 // TEMPLET: a template, personal (a booking) or public (a Template)
	KindVirtual  Kind = 4 // VIRTUAL: a fixed virtual meeting room
)

func (k Kind) String() string {
	switch k {
	case KindInstant:
		return "instant"
	case KindReserve:
		return "reserve"
	case KindTemplate:
		return "template"
	case KindVirtual:
		return "virtual"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Booking is a number the CM booked: a scheduled conference, a personal
// template or a virtual room. The scheduler reports them to its registry,
// and on failover a backup reports a failed master's (000 §7.2).
type Booking struct {
	E164     string
	Kind     Kind   // KindReserve, KindTemplate or KindVirtual
	Domain   string // moid of the user domain
	Platform string // moid of the source platform
	Name     string
	// StartAt and EndAt bound a scheduled conference (KindReserve, both
	// required); zero for the other kinds.
	StartAt time.Time
	EndAt   time.Time

	// Set by the database; ignored on writes. Times are kept to the
	// millisecond.
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64 // 1 at creation, +1 at each change
}

// LogValue logs a booking's identity.
func (b Booking) LogValue() slog.Value {
	return slog.GroupValue(slog.String("e164", b.E164), slog.String("kind", b.Kind.String()),
		slog.String("moid", b.Domain), slog.String("platform", b.Platform), slog.Int64("version", b.Version))
}

func (b Booking) check() error {
	switch {
	case b.E164 == "":
		return fmt.Errorf("%w: a booking needs its e164", ErrInvalid)
	case b.Kind != KindReserve && b.Kind != KindTemplate && b.Kind != KindVirtual:
		return fmt.Errorf("%w: booking %s: kind %s: a booking is a scheduled conference (2), a personal template (3) or a virtual room (4)", ErrInvalid, b.E164, b.Kind)
	case b.Domain == "":
		return fmt.Errorf("%w: booking %s needs its user domain (moid)", ErrInvalid, b.E164)
	case b.Platform == "":
		return fmt.Errorf("%w: booking %s needs its source platform", ErrInvalid, b.E164)
	case b.Kind == KindReserve && (b.StartAt.IsZero() || !b.EndAt.After(b.StartAt)):
		return fmt.Errorf("%w: scheduled conference %s needs a start and an end after it", ErrInvalid, b.E164)
	case b.Kind != KindReserve && (!b.StartAt.IsZero() || !b.EndAt.IsZero()):
		return fmt.Errorf("%w: booking %s: only a scheduled conference has a start and an end, not a %s", ErrInvalid, b.E164, b.Kind)
	}
	return nil
}

const bookingCols = "e164, kind, moid, platform, name, start_at, end_at, created_at, updated_at, version"

func scanBooking(s rowScanner) (Booking, error) {
	var (
		b                             Booking
		start, end, created, modified int64
	)
	if err := s.Scan(&b.E164, &b.Kind, &b.Domain, &b.Platform, &b.Name, &start, &end, &created, &modified, &b.Version); err != nil {
		return Booking{}, errNoRow(err)
	}
	b.StartAt, b.EndAt = fromMs(start), fromMs(end)
	b.CreatedAt, b.UpdatedAt = fromMs(created), fromMs(modified)
	return b, nil
}

// PutBooking creates or replaces the booking of b.E164 and returns it as
// stored; last writer wins, as the CM's notices carry the whole booking.
// Put again with the same content (a retry, or a report repeated after a
// failover) it changes nothing, not even the version. Errors: ErrInvalid.
func (db *DB) PutBooking(ctx context.Context, b Booking) (Booking, error) {
	if err := b.check(); err != nil {
		return Booking{}, err
	}
	stored, err := scanBooking(db.w.QueryRowContext(ctx, `INSERT INTO bookings (`+bookingCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, 1)
		ON CONFLICT (e164) DO UPDATE SET
			kind = excluded.kind, moid = excluded.moid, platform = excluded.platform, name = excluded.name,
			start_at = excluded.start_at, end_at = excluded.end_at,
			updated_at = excluded.updated_at, version = bookings.version + 1
		WHERE bookings.kind <> excluded.kind OR bookings.moid <> excluded.moid
			OR bookings.platform <> excluded.platform OR bookings.name <> excluded.name
			OR bookings.start_at <> excluded.start_at OR bookings.end_at <> excluded.end_at
		RETURNING `+bookingCols,
		b.E164, int(b.Kind), b.Domain, b.Platform, b.Name, ms(b.StartAt), ms(b.EndAt), ms(db.now())))
	if err == nil {
		return stored, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Booking{}, keyed(err, "put booking", b.E164)
	}
	// Nothing to change: the booking already says this.
	return db.Booking(ctx, b.E164)
}

// DeleteBooking removes a booking and returns what it held. A repeated
// delete finds nothing: ErrNotFound, which a retry may take as done.
func (db *DB) DeleteBooking(ctx context.Context, e164 string) (Booking, error) {
	b, err := scanBooking(db.w.QueryRowContext(ctx, "DELETE FROM bookings WHERE e164 = $1 RETURNING "+bookingCols, e164))
	return b, keyed(err, "delete booking", e164)
}

// Booking reads one booking. Errors: ErrNotFound.
func (db *DB) Booking(ctx context.Context, e164 string) (Booking, error) {
	b, err := scanBooking(db.r.QueryRowContext(ctx, "SELECT "+bookingCols+" FROM bookings WHERE e164 = $1", e164))
	return b, keyed(err, "read booking", e164)
}

// BookingsOf lists a user domain's bookings by number.
func (db *DB) BookingsOf(ctx context.Context, moid string) ([]Booking, error) {
	return list(ctx, db.r, scanBooking, "SELECT "+bookingCols+" FROM bookings WHERE moid = $1 ORDER BY e164", moid)
}

// AllBookings lists the bookings whose source platform is platform, by
// number.
func (db *DB) AllBookings(ctx context.Context, platform string) ([]Booking, error) {
	return list(ctx, db.r, scanBooking, "SELECT "+bookingCols+" FROM bookings WHERE platform = $1 ORDER BY e164", platform)
}

// Entry is a number a scheduler reports to its registry.
type Entry struct {
	E164     string
	Kind     Kind
	Domain   string // moid of the user domain
	Platform string // moid of the source platform
	Name     string
}

// Directory lists every number of a source platform a registry must know
// before any conference runs: its scheduled conferences, personal
// templates and virtual rooms, and its public templates (KindTemplate),
// by number. A scheduler reports its own platform's at start, and a
// backup reports a failed master's (000 §7.1, §7.2).
func (db *DB) Directory(ctx context.Context, platform string) ([]Entry, error) {
	return list(ctx, db.r, func(s rowScanner) (Entry, error) {
		var e Entry
		err := s.Scan(&e.E164, &e.Kind, &e.Domain, &e.Platform, &e.Name)
		return e, err
	}, `SELECT e164, kind, moid, platform, name FROM bookings WHERE platform = $1
		UNION ALL
		SELECT e164, CAST($2 AS INTEGER), moid, platform, name FROM templates WHERE platform = $1
		ORDER BY e164`, platform, int(KindTemplate))
}
