package records

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The schema, one file per version: migrations/NNNN_name.sql, in the SQL
// both databases speak. Where one cannot be written so, the version has a
// file in each dialect's directory instead (migrations/sqlite/ and
// migrations/postgres/, same NNNN_name.sql), which replaces the shared one.
// A file once released never changes: a change is a new version.
//
//go:embed migrations
var embedded embed.FS

// migrations is the embedded set, rooted at migrations/.
var migrations = func() fs.FS {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}()

// migrationName is NNNN_name.sql.
var migrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the migrations of dialect from fsys, in version
// order. Every dialect must have every version, with the same name: a
// set that breaks this is refused whichever dialect asks.
func loadMigrations(fsys fs.FS, dialect string) ([]migration, error) {
	shared, err := readMigrationDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	own := map[string]map[int]migration{}
	names := map[int]string{} // version → name, over every directory
	for _, d := range []string{SQLite, Postgres} {
		if own[d], err = readMigrationDir(fsys, d); err != nil {
			return nil, err
		}
		for v, m := range own[d] {
			names[v] = m.name
		}
	}
	for v, m := range shared {
		if n, ok := names[v]; ok && n != m.name {
			return nil, fmt.Errorf("records: migration %04d is named %q and %q: a dialect's file must keep the shared name", v, m.name, n)
		}
		names[v] = m.name
	}
	var out []migration
	for v, name := range names {
		for _, d := range []string{SQLite, Postgres} {
			m, ok := own[d][v]
			if !ok {
				m, ok = shared[v]
			}
			if !ok {
				return nil, fmt.Errorf("records: migration %04d_%s has no file for %s: add migrations/%s/%04d_%s.sql or a shared one", v, name, d, d, v, name)
			}
			if d == dialect {
				out = append(out, m)
			}
		}
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

// readMigrationDir reads the NNNN_name.sql files of one directory; a
// missing directory has none.
func readMigrationDir(fsys fs.FS, dir string) (map[int]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("records: migrations: %w", err)
	}
	out := map[int]migration{}
	for _, e := range entries {
		if e.IsDir() {
			if dir == "." && (e.Name() == SQLite || e.Name() == Postgres) {
				continue
			}
			return nil, fmt.Errorf("records: migrations/%s: only %s/ and %s/ may hold a dialect's own files", path.Join(dir, e.Name()), SQLite, Postgres)
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("records: migrations/%s: name it NNNN_name.sql (four digits, lower-case name)", path.Join(dir, e.Name()))
		}
		v, _ := strconv.Atoi(m[1])
		if v == 0 {
			return nil, fmt.Errorf("records: migrations/%s: versions start at 0001", path.Join(dir, e.Name()))
		}
		if old, dup := out[v]; dup {
			return nil, fmt.Errorf("records: migrations/%s: version %04d is also %04d_%s.sql", path.Join(dir, e.Name()), v, v, old.name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("records: migrations: %w", err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return nil, fmt.Errorf("records: migrations/%s is empty", path.Join(dir, e.Name()))
		}
		out[v] = migration{version: v, name: m[2], sql: string(b)}
	}
	return out, nil
}

// migrate brings the schema up to the newest migration of fsys, each
// migration in a transaction of its own together with its row in
// schema_migrations, so a crash leaves it applied whole or not at all.
// Two processes opening one database at once apply each migration once.
// A database at a version newer than fsys knows is refused untouched.
func (db *DB) migrate(ctx context.Context, fsys fs.FS) error {
	all, err := loadMigrations(fsys, db.dialect)
	if err != nil {
		return err
	}
	latest := 0
	if len(all) > 0 {
		latest = all[len(all)-1].version
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    BIGINT NOT NULL PRIMARY KEY,
			name       TEXT   NOT NULL,
			applied_at BIGINT NOT NULL
		)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: create schema_migrations: %w", ErrUnavailable, err)
	}
	current, err := db.schemaVersion(ctx, db.w)
	if err != nil {
		return err
	}
	if current > latest {
		return fmt.Errorf("%w: %s is at schema version %d, this binary knows versions up to %d: run a Convene that knows version %d or newer (the database was left unchanged)",
			ErrSchemaTooNew, db.shown, current, latest, current)
	}
	for _, m := range all {
		applied := false
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = $1", m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			applied = true
			_, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
				m.version, m.name, ms(db.now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("records: migration %04d_%s on %s: %w", m.version, m.name, db.shown, err)
		}
		if applied {
			db.log.Info("records migrated", "db", db.dialect, "version", m.version, "migration", m.name)
		}
	}
	db.version, err = db.schemaVersion(ctx, db.w)
	return err
}

// schemaVersion is the newest migration applied, 0 for none.
func (db *DB) schemaVersion(ctx context.Context, q *sql.DB) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("%w: read schema version: %w", ErrUnavailable, err)
	}
	return int(v.Int64), nil
}

// inTx runs f in a write transaction holding the migration lock, and
// commits it when f succeeds.
func (db *DB) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := lockMigrations(ctx, db.dialect, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
