package cdr_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/pgtest"
	"github.com/convene/convene/internal/records"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backends are the databases every test runs on: a SQLite file and a
// real PostgreSQL.
var backends = []struct {
	name string
	url  func(t testing.TB) string
}{
	{records.SQLite, func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "records.db") }},
	{records.Postgres, pgtest.Start},
}

func eachBackend(t *testing.T, f func(t *testing.T, url string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.url(t)) })
	}
}

func openDB(t testing.TB, url string) *records.DB {
	t.Helper()
	db, err := records.Open(context.Background(), url, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// startService starts a service on db, shut down when the test ends.
func startService(t testing.TB, db *records.DB, opts cdr.Options) *cdr.Service {
	t.Helper()
	s, err := cdr.New(opts, db, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}
