package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// This file holds everything that differs between SQLite and PostgreSQL;
// the rest of the package is one code path. Both drivers bind $1, $2, ...
// placeholders (modernc.org/sqlite binds $N to the Nth argument), so
// queries are written once, in the SQL both speak: CREATE TABLE/INDEX IF
// NOT EXISTS, INSERT ... ON CONFLICT, RETURNING, TEXT, INTEGER, BIGINT and
// BOOLEAN columns, times as BIGINT milliseconds.
//
// PostgreSQL goes through pgx's database/sql driver (stdlib) rather than
// pgxpool: the repository code then holds the same *sql.DB and *sql.Tx
// for both databases, and pgx still does the wire protocol, the types and
// the statement cache; database/sql's pool is enough for this load.

// Dialect names, as DB.Dialect reports them.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// sqliteBusyTimeout is how long a SQLite statement waits for another
// process's write lock before failing with SQLITE_BUSY.
const sqliteBusyTimeout = 10 * time.Second

// sqliteCheckpointPages is the length of the WAL, in pages (32 MiB of
// 4 KiB pages), past which a commit of the writer copies it into the
// database (see openSQLite).
const sqliteCheckpointPages = 8192

// sqliteReaders bounds the SQLite read connections; reads run beside the
// single writer (WAL).
const sqliteReaders = 4

// target is a parsed records URL.
type target struct {
	dialect string
	path    string // SQLite: the database file
	url     string // PostgreSQL: the URL as given (it may hold a password)
	shown   string // what logs and errors may print
}

// parseURL reads a records URL: "sqlite:///abs/path.db",
// "sqlite://relative.db", a bare file path (SQLite), or
// "postgres://..." / "postgresql://..." (PostgreSQL).
func parseURL(raw string) (target, error) {
	switch {
	case raw == "":
		return target{}, fmt.Errorf("%w: the URL is empty", ErrBadURL)
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		return target{dialect: Postgres, url: raw, shown: redact(raw)}, nil
	}
	path := raw
	if rest, ok := strings.CutPrefix(raw, "sqlite:"); ok {
		path = strings.TrimPrefix(rest, "//")
	} else if i := strings.Index(raw, "://"); i > 0 && !strings.ContainsAny(raw[:i], `/\.`) {
		return target{}, fmt.Errorf("%w: unknown scheme %q", ErrBadURL, raw[:i])
	}
	switch {
	case path == "":
		return target{}, fmt.Errorf("%w: %q names no file", ErrBadURL, raw)
	case strings.ContainsAny(path, "?#"):
		return target{}, fmt.Errorf("%w: %q: a SQLite file name may not hold ? or # (options are set by Convene)", ErrBadURL, raw)
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		return target{}, fmt.Errorf("%w: %q: name a file on disk", ErrBadURL, raw)
	}
	return target{dialect: SQLite, path: filepath.Clean(path), shown: "sqlite://" + filepath.Clean(path)}, nil
}

// redact hides the password of a PostgreSQL URL, also one given as the
// password query parameter.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// openSQLite opens the file (created 0600 when missing, with its
// directory) as two pools: one writer connection, so this process's writes
// queue in Go instead of failing with SQLITE_BUSY, and a few read-only
// connections beside it (WAL lets them read while it writes). Writes of
// other processes are waited for up to sqliteBusyTimeout. The writer
// keeps up to 64 MiB of pages and its statement journals in memory: a
// batch's roll-ups touch pages all over their tables, which the default
// 2 MiB cache spilled to the WAL and temporary files mid-transaction.
//
// The writer syncs every commit (synchronous=FULL): a record a SIP node
// was told is written, and forgot, survives a crash of the machine too.
// It checkpoints every sqliteCheckpointPages pages of WAL rather than
// SQLite's 1,000: a batch whose calls started all over the month writes
// thousands of pages (records, their indexes, roll-ups), so every commit
// used to copy them into the database again; a longer WAL copies a page
// rewritten by many batches (the roll-ups of busy prefixes, the live
// calls, the tail of the time index) once per checkpoint.
func openSQLite(ctx context.Context, path string) (w, r *sql.DB, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	switch {
	case err == nil:
		_ = f.Close()
	case !errors.Is(err, os.ErrExist):
		return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=1", sqliteBusyTimeout.Milliseconds())
	w, err = sql.Open("sqlite", path+"?"+common+"&_journal_mode=WAL&_txlock=immediate&_pragma=cache_size(-65536)&_pragma=temp_store(memory)"+
		fmt.Sprintf("&_pragma=synchronous(FULL)&_pragma=wal_autocheckpoint(%d)", sqliteCheckpointPages))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil { // makes the file WAL before a reader opens it
		_ = w.Close()
		return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	r, err = sql.Open("sqlite", path+"?"+common+"&_query_only=1")
	if err != nil {
		_ = w.Close()
		return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	r.SetMaxOpenConns(sqliteReaders)
	r.SetMaxIdleConns(sqliteReaders)
	return w, r, nil
}

// openPostgres opens a pool on a PostgreSQL database.
func openPostgres(ctx context.Context, t target) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(t.url)
	if err != nil {
		if hidesPassword(t.url, err) {
			return nil, fmt.Errorf("%w: %s does not parse", ErrBadURL, t.shown)
		}
		return nil, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(10)
	db.SetMaxIdleConns(5)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		if hidesPassword(t.url, err) {
			return nil, fmt.Errorf("%w: %s: cannot connect", ErrUnavailable, t.shown)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, t.shown, err)
	}
	return db, nil
}

// hidesPassword reports whether err's message holds the password of the
// URL raw: pgx masks the passwords it recognizes, but a malformed URL may
// hide one from it, so such a message is never shown.
func hidesPassword(raw string, err error) bool {
	u, perr := url.Parse(raw)
	if perr != nil {
		return true // unknown: assume it does
	}
	pw, ok := u.User.Password()
	if !ok {
		pw = u.Query().Get("password")
	}
	return pw != "" && strings.Contains(err.Error(), pw)
}

// lockMigrations keeps two processes from migrating one database at
// once, for the rest of the transaction tx. SQLite needs nothing: the
// writer's transactions begin IMMEDIATE, holding the file's write lock.
func lockMigrations(ctx context.Context, dialect string, tx *sql.Tx) error {
	if dialect != Postgres {
		return nil
	}
	// A fixed key of this package: "records" in ASCII.
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7310309733057635)")
	return err
}
