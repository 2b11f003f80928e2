package records

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		url, dialect, path, shown string
		err                       error
	}{
		{url: "sqlite:///var/lib/convene/records.db", dialect: SQLite, path: "/var/lib/convene/records.db", shown: "sqlite:///var/lib/convene/records.db"},
		{url: "sqlite://records.db", dialect: SQLite, path: "records.db", shown: "sqlite://records.db"},
		{url: "sqlite://.convene/records.db", dialect: SQLite, path: filepath.Clean(".convene/records.db"), shown: "sqlite://.convene/records.db"},
		{url: "sqlite:records.db", dialect: SQLite, path: "records.db", shown: "sqlite://records.db"},
		{url: "/data/records.db", dialect: SQLite, path: "/data/records.db", shown: "sqlite:///data/records.db"},
		{url: "./records.db", dialect: SQLite, path: "records.db", shown: "sqlite://records.db"},
		{url: "postgres://convene:pw@db:5432/records?sslmode=disable", dialect: Postgres, shown: "postgres://convene:xxxxx@db:5432/records?sslmode=disable"},
		{url: "postgresql://convene@db/records?password=pw", dialect: Postgres, shown: "postgresql://convene@db/records?password=xxxxx"},
		{url: "", err: ErrBadURL},
		{url: "sqlite://", err: ErrBadURL},
		{url: "sqlite://records.db?_pragma=x", err: ErrBadURL},
		{url: "sqlite://:memory:", err: ErrBadURL},
		{url: "sqlite://file:records.db", err: ErrBadURL},
		{url: "mysql://db/records", err: ErrBadURL},
	} {
		got, err := parseURL(c.url)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("parseURL(%q) = %+v, %v; want %v", c.url, got, err, c.err)
			}
			continue
		}
		if err != nil || got.dialect != c.dialect || got.path != c.path || got.shown != c.shown {
			t.Errorf("parseURL(%q) = %+v, %v; want %s %q shown as %q", c.url, got, err, c.dialect, c.path, c.shown)
		}
		if strings.Contains(got.shown, "pw@") || strings.Contains(got.shown, "=pw") {
			t.Errorf("parseURL(%q) shows the password: %q", c.url, got.shown)
		}
	}
}

// TestSQLiteWriterSettings checks what the writer of a SQLite file runs
// with: WAL, synced at every commit, and a WAL of sqliteCheckpointPages
// between checkpoints.
func TestSQLiteWriterSettings(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "records.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		pragma, want string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"wal_autocheckpoint", strconv.Itoa(sqliteCheckpointPages)},
		{"cache_size", "-65536"},
	} {
		t.Run(c.pragma, func(t *testing.T) {
			var got string
			if err := db.w.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", c.pragma, err)
			}
			if got != c.want {
				t.Errorf("PRAGMA %s = %s, want %s", c.pragma, got, c.want)
			}
		})
	}
}
