package records

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

func file(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }

func TestLoadMigrations(t *testing.T) {
	for _, c := range []struct {
		name    string
		fs      fstest.MapFS
		sqlite  string // the SQL of each version in order, joined by |
		pg      string
		wantErr string
	}{
		{name: "shared only", fs: fstest.MapFS{
			"0002_b.sql": file("B"), "0001_a.sql": file("A"),
		}, sqlite: "A|B", pg: "A|B"},
		{name: "a dialect's own file replaces the shared one", fs: fstest.MapFS{
			"0001_a.sql": file("A"), "postgres/0001_a.sql": file("A-pg"), "0002_b.sql": file("B"),
		}, sqlite: "A|B", pg: "A-pg|B"},
		{name: "a version in each dialect only", fs: fstest.MapFS{
			"0001_a.sql": file("A"), "sqlite/0002_b.sql": file("B-lite"), "postgres/0002_b.sql": file("B-pg"),
		}, sqlite: "A|B-lite", pg: "A|B-pg"},
		{name: "a version one dialect lacks", fs: fstest.MapFS{
			"0001_a.sql": file("A"), "postgres/0002_b.sql": file("B-pg"),
		}, wantErr: "has no file for sqlite"},
		{name: "a dialect renaming a version", fs: fstest.MapFS{
			"0001_a.sql": file("A"), "sqlite/0001_other.sql": file("A2"),
		}, wantErr: "keep the shared name"},
		{name: "a badly named file", fs: fstest.MapFS{"1_a.sql": file("A")}, wantErr: "NNNN_name.sql"},
		{name: "version zero", fs: fstest.MapFS{"0000_a.sql": file("A")}, wantErr: "start at 0001"},
		{name: "a version twice", fs: fstest.MapFS{"0001_a.sql": file("A"), "0001_b.sql": file("B")}, wantErr: "version 0001 is also"},
		{name: "an empty file", fs: fstest.MapFS{"0001_a.sql": file(" \n")}, wantErr: "is empty"},
		{name: "an unknown directory", fs: fstest.MapFS{"mysql/0001_a.sql": file("A")}, wantErr: "only sqlite/ and postgres/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for dialect, want := range map[string]string{SQLite: c.sqlite, Postgres: c.pg} {
				ms, err := loadMigrations(c.fs, dialect)
				if c.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), c.wantErr) {
						t.Fatalf("%s: loadMigrations = %v, want an error saying %q", dialect, err, c.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s: %v", dialect, err)
				}
				var got []string
				for i, m := range ms {
					if m.version != i+1 {
						t.Fatalf("%s: migration %d has version %d", dialect, i, m.version)
					}
					got = append(got, m.sql)
				}
				if strings.Join(got, "|") != want {
					t.Errorf("%s: %q, want %q", dialect, strings.Join(got, "|"), want)
				}
			}
		})
	}
}

// The embedded schema loads for both databases.
func TestEmbeddedMigrationsLoad(t *testing.T) {
	for _, d := range []string{SQLite, Postgres} {
		ms, err := loadMigrations(migrations, d)
		if err != nil || len(ms) == 0 {
			t.Fatalf("%s: %d migrations, %v", d, len(ms), err)
		}
	}
}

// A migration that fails part-way leaves nothing of itself behind: not
// its first statements, not its version.
func TestAFailedMigrationLeavesNoTrace(t *testing.T) {
	for _, b := range Backends {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := Open(ctx, b.URL(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			next := fstest.MapFS{}
			for _, m := range must(loadMigrations(migrations, b.Name)) {
				next[filepathOf(m)] = file(m.sql)
			}
			bad := db.version + 1
			next[filepathOf(migration{version: bad, name: "broken"})] = file(
				"CREATE TABLE half_done (a INTEGER);\nINSERT INTO no_such_table VALUES (1);")
			err = db.migrate(ctx, next)
			if err == nil || !strings.Contains(err.Error(), "_broken") {
				t.Fatalf("migrate with a broken migration = %v, want its error naming it", err)
			}
			var n int
			if err := db.w.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = $1", bad).Scan(&n); err != nil || n != 0 {
				t.Fatalf("the broken migration is recorded as applied (%d rows, %v)", n, err)
			}
			if _, err := db.w.ExecContext(ctx, "SELECT count(*) FROM half_done"); err == nil {
				t.Fatal("the broken migration's first statement stayed")
			}
			if v, err := db.schemaVersion(ctx, db.w); err != nil || v != bad-1 {
				t.Fatalf("schema version %d, %v; want %d", v, err, bad-1)
			}
			// Fixed, it applies.
			next[filepathOf(migration{version: bad, name: "broken"})] = file("CREATE TABLE half_done (a INTEGER);")
			if err := db.migrate(ctx, next); err != nil || db.version != bad {
				t.Fatalf("migrate with the fix = %v, version %d; want %d", err, db.version, bad)
			}
		})
	}
}

func filepathOf(m migration) string { return fmt.Sprintf("%04d_%s.sql", m.version, m.name) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
