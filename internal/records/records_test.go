package records_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/pgtest"
	"github.com/convene/convene/internal/records"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// eachBackend runs f against a fresh database of every backend.
func eachBackend(t *testing.T, f func(t *testing.T, url string)) {
	for _, b := range records.Backends {
		t.Run(b.Name, func(t *testing.T) { f(t, b.URL(t)) })
	}
}

func open(t *testing.T, url string) *records.DB {
	t.Helper()
	db, err := records.Open(context.Background(), url, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// clock is a settable time for a DB.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(db *records.DB) *clock {
	c := &clock{now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
	records.SetNow(db, func() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now })
	return c
}

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func TestMigrationsApplyOnceAndSurviveReopen(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		n, latest := records.Migrations(t)
		if db.SchemaVersion() != latest {
			t.Fatalf("fresh database at schema version %d, want %d", db.SchemaVersion(), latest)
		}
		if _, err := db.CreateTemplate(ctx, tpl("6600001")); err != nil {
			t.Fatal(err)
		}
		_ = db.Close()

		db = open(t, url)
		if db.SchemaVersion() != latest {
			t.Fatalf("reopened at schema version %d, want %d", db.SchemaVersion(), latest)
		}
		var rows int
		if err := records.Raw(db).QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&rows); err != nil || rows != n {
			t.Fatalf("schema_migrations has %d rows (%v), want %d: a reopen applied a migration again", rows, err, n)
		}
		if _, err := db.Template(ctx, "6600001"); err != nil {
			t.Fatalf("a template did not survive a reopen: %v", err)
		}
	})
}

// A database migrated by a newer binary is refused, named, and untouched.
func TestOpenRefusesANewerSchema(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		if _, err := records.Raw(db).ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (42, 'future', 0)"); err != nil {
			t.Fatal(err)
		}
		_ = db.Close()

		_, err := records.Open(ctx, url, nil)
		if !errors.Is(err, records.ErrSchemaTooNew) {
			t.Fatalf("Open on a newer schema = %v, want ErrSchemaTooNew", err)
		}
		_, latest := records.Migrations(t)
		for _, want := range []string{"version 42", fmt.Sprintf("up to %d", latest)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}
	})
}

// Processes starting together on one fresh database migrate it once.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		const n = 4
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				db, err := records.Open(context.Background(), url, nil)
				if err == nil {
					err = db.Close()
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent Open: %v", err)
			}
		}
		db := open(t, url)
		applied, _ := records.Migrations(t)
		var rows int
		if err := records.Raw(db).QueryRowContext(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&rows); err != nil || rows != applied {
			t.Fatalf("schema_migrations has %d rows (%v), want %d", rows, err, applied)
		}
	})
}

// Both drivers bind $N to the Nth argument, in any order and repeated:
// the one query text the package writes for both.
func TestPlaceholdersBindTheSameOnBothDatabases(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		db := open(t, url)
		var got string
		err := records.Raw(db).QueryRowContext(context.Background(),
			"SELECT CAST($2 AS TEXT) || CAST($1 AS TEXT) || CAST($1 AS TEXT)", "a", "b").Scan(&got)
		if err != nil || got != "baa" {
			t.Fatalf("$2 $1 $1 with (a, b) = %q, %v; want baa", got, err)
		}
	})
}

func TestSQLiteFileIsPrivateAndInWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "records.db")
	db := open(t, path) // a bare path, in a directory that does not exist yet
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("records file mode %v, want 0600 (it holds template passwords)", fi.Mode().Perm())
	}
	var mode string
	if err := records.Raw(db).QueryRowContext(context.Background(), "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q (%v), want wal", mode, err)
	}
	var fk int
	if err := records.Raw(db).QueryRowContext(context.Background(), "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys %d (%v), want 1", fk, err)
	}
	if db.Dialect() != records.SQLite || db.URL() != "sqlite://"+path {
		t.Errorf("Dialect, URL = %q, %q", db.Dialect(), db.URL())
	}
}

// No password of a PostgreSQL URL reaches an error or the log.
func TestOpenNeverShowsThePassword(t *testing.T) {
	for _, url := range []string{
		"postgres://convene:s3cret-pw@127.0.0.1:1/records?sslmode=disable&connect_timeout=2",
		"postgresql://convene@127.0.0.1:1/records?sslmode=disable&connect_timeout=2&password=s3cret-pw",
		"postgres://convene:s3cret-pw@127.0.0.1:notaport/records",
	} {
		var log strings.Builder
		_, err := records.Open(context.Background(), url, slog.New(slog.NewTextHandler(&log, nil)))
		if err == nil {
			t.Fatalf("Open(%q) succeeded with nothing listening", url)
		}
		if !errors.Is(err, records.ErrUnavailable) && !errors.Is(err, records.ErrBadURL) {
			t.Errorf("Open(%q) = %v, want ErrUnavailable or ErrBadURL", url, err)
		}
		if strings.Contains(err.Error(), "s3cret-pw") || strings.Contains(log.String(), "s3cret-pw") {
			t.Errorf("the password shows: error %q, log %q", err, log.String())
		}
	}
}
