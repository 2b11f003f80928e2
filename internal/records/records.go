package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// DB is an open records database. Its methods are safe for concurrent use.
type DB struct {
	dialect string
	shown   string  // the URL without secrets
	w       *sql.DB // writes (SQLite: one connection)
	r       *sql.DB // reads (PostgreSQL: the same pool as w)
	log     *slog.Logger
	now     func() time.Time
	version int // schema version after Open's migrations
}

// Open opens the records database at url and brings its schema up to
// this binary's version. url is "sqlite:///abs/path.db",
// "sqlite://relative.db" or a bare file path for a SQLite file (created
// when missing), or "postgres://user@host:port/db" for PostgreSQL (the
// database must exist). A nil log discards.
//
// Errors: ErrBadURL, ErrUnavailable, ErrSchemaTooNew (the database was
// migrated by a newer binary: nothing is changed).
func Open(ctx context.Context, url string, log *slog.Logger) (*DB, error) {
	t, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	db := &DB{dialect: t.dialect, shown: t.shown, log: log, now: time.Now}
	switch t.dialect {
	case SQLite:
		db.w, db.r, err = openSQLite(ctx, t.path)
	default:
		db.w, err = openPostgres(ctx, t)
		db.r = db.w
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx, migrations); err != nil {
		_ = db.Close()
		return nil, err
	}
	log.Info("records open", "db", t.dialect, "url", t.shown, "schema", db.version)
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error {
	if db.r != db.w {
		return errors.Join(db.r.Close(), db.w.Close())
	}
	return db.w.Close()
}

// Dialect is SQLite or Postgres.
func (db *DB) Dialect() string { return db.dialect }

// URL is the database's URL without its password, for logs and status.
func (db *DB) URL() string { return db.shown }

// SchemaVersion is the schema version the database is at.
func (db *DB) SchemaVersion() int { return db.version }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, db.shown, err)
	}
	return nil
}

// ms is a time as stored: milliseconds since the Unix epoch, 0 for the
// zero time.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMs reads a stored time back, in UTC.
func fromMs(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// errNoRow turns sql.ErrNoRows into ErrNotFound.
func errNoRow(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// keyed says which operation on which key failed; nil stays nil.
func keyed(err error, op, key string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: %s %s", ErrNotFound, op, key)
	}
	return fmt.Errorf("records: %s %s: %w", op, key, err)
}
