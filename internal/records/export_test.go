package records

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/convene/convene/internal/pgtest"
)

// Backend is a database every repository test runs against.
type Backend struct {
	Name string
	// URL makes a fresh, empty database for the test.
	URL func(t testing.TB) string
}

// Backends are SQLite (a file in the test's directory) and a real
// PostgreSQL (a database of its own on the package's server).
var Backends = []Backend{
	{SQLite, func(t testing.TB) string { return "sqlite://" + filepath.Join(t.TempDir(), "records.db") }},
	{Postgres, pgtest.Start},
}

// SetNow replaces the database's clock.
func SetNow(db *DB, now func() time.Time) { db.now = now }

// Raw is the database's write pool, for tests that look under the API.
func Raw(db *DB) *sql.DB { return db.w }
