package records

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Template is a public conference template (seed 000 §10, the seed's
// TTemplateInfo), keyed by its number.
//
// Password is stored, in clear: it is not a credential of a user but the
// join code every conference started from the template gets, which media
// nodes compare as typed and the CM reads back (001 §2.1, full info); a
// hash would make the template useless. It never leaves through logs
// (LogValue leaves it out), and the SQLite file is created readable by
// its owner only.
type Template struct {
	E164            string
	Domain          string // moid of the user domain
	Platform        string // moid of the source platform
	Name            string
	Scale           int
	Resolution      string
	DurationMinutes int
	Password        string
	Public          bool
	Invited         []string
	Recording       bool

	// Set by the database: CreatedAt may be given to CreateTemplate (a
	// template moved from elsewhere keeps its age); the rest is ignored on
	// writes. Times are kept to the millisecond.
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64 // 1 at creation, +1 at each change
}

// AnyVersion, as UpdateTemplate's expected version, applies the change
// whatever the stored version: last writer wins. It is for requests that
// carry no version, as the CM's CM_MAU_MDFTEMPLATE_REQ does.
const AnyVersion int64 = 0

// casAttempts bounds the read-compare-write rounds of one update racing
// other writers.
const casAttempts = 8

// LogValue logs a template without its password and invitees.
func (t Template) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("e164", t.E164), slog.String("moid", t.Domain), slog.String("platform", t.Platform),
		slog.String("name", t.Name), slog.Int64("version", t.Version))
}

// sameContent reports whether two templates say the same, times and
// version aside.
func (t Template) sameContent(o Template) bool {
	return t.E164 == o.E164 && t.Domain == o.Domain && t.Platform == o.Platform && t.Name == o.Name &&
		t.Scale == o.Scale && t.Resolution == o.Resolution && t.DurationMinutes == o.DurationMinutes &&
		t.Password == o.Password && t.Public == o.Public && t.Recording == o.Recording &&
		slices.Equal(t.Invited, o.Invited)
}

func (t Template) check() error {
	switch {
	case t.E164 == "":
		return fmt.Errorf("%w: a template needs its e164", ErrInvalid)
	case t.Domain == "":
		return fmt.Errorf("%w: template %s needs its user domain (moid)", ErrInvalid, t.E164)
	case t.Platform == "":
		return fmt.Errorf("%w: template %s needs its source platform", ErrInvalid, t.E164)
	}
	return nil
}

const templateCols = `e164, moid, platform, name, scale, resolution, duration_minutes, password,
	public, invited, recording, created_at, updated_at, version`

func scanTemplate(s rowScanner) (Template, error) {
	var (
		t                 Template
		invited           string
		created, modified int64
	)
	err := s.Scan(&t.E164, &t.Domain, &t.Platform, &t.Name, &t.Scale, &t.Resolution, &t.DurationMinutes,
		&t.Password, &t.Public, &invited, &t.Recording, &created, &modified, &t.Version)
	if err != nil {
		return Template{}, errNoRow(err)
	}
	if err := json.Unmarshal([]byte(invited), &t.Invited); err != nil {
		return Template{}, fmt.Errorf("records: template %s: invited is not a JSON list: %w", t.E164, err)
	}
	if len(t.Invited) == 0 {
		t.Invited = nil
	}
	t.CreatedAt, t.UpdatedAt = fromMs(created), fromMs(modified)
	return t, nil
}

func invitedJSON(invited []string) (string, error) {
	if len(invited) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(invited)
	return string(b), err
}

// CreateTemplate stores a new template and returns it as stored. Created
// again with the same content (a retry after a lost reply) it returns the
// stored one unchanged. Errors: ErrExists (the number holds a different
// template), ErrInvalid.
func (db *DB) CreateTemplate(ctx context.Context, t Template) (Template, error) {
	if err := t.check(); err != nil {
		return Template{}, err
	}
	invited, err := invitedJSON(t.Invited)
	if err != nil {
		return Template{}, fmt.Errorf("%w: template %s: invited: %w", ErrInvalid, t.E164, err)
	}
	now := ms(db.now())
	created := ms(t.CreatedAt)
	if created == 0 {
		created = now
	}
	for range casAttempts {
		stored, err := scanTemplate(db.w.QueryRowContext(ctx, `INSERT INTO templates (`+templateCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1)
			ON CONFLICT (e164) DO NOTHING
			RETURNING `+templateCols,
			t.E164, t.Domain, t.Platform, t.Name, t.Scale, t.Resolution, t.DurationMinutes, t.Password,
			t.Public, invited, t.Recording, created, now))
		if err == nil {
			return stored, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Template{}, fmt.Errorf("records: create template %s: %w", t.E164, err)
		}
		// The number is taken: by this very template (a retry) or another.
		old, err := db.Template(ctx, t.E164)
		switch {
		case errors.Is(err, ErrNotFound):
			continue // deleted meanwhile: insert again
		case err != nil:
			return Template{}, err
		case old.sameContent(t):
			return old, nil
		}
		return Template{}, fmt.Errorf("%w: template %s (version %d) differs from the one to create", ErrExists, t.E164, old.Version)
	}
	return Template{}, fmt.Errorf("%w: template %s was created and deleted %d times while being created", ErrConflict, t.E164, casAttempts)
}

// UpdateTemplate replaces the content of template t.E164 and returns it
// as stored. expect is the version the change was based on: a template
// changed since then is refused with ErrConflict, unless it already holds
// t's content; AnyVersion applies the change whatever the version. An
// update to the content already stored (a retry) changes nothing, not
// even the version. CreatedAt, UpdatedAt and Version of t are ignored.
// Errors: ErrNotFound, ErrConflict, ErrInvalid.
func (db *DB) UpdateTemplate(ctx context.Context, t Template, expect int64) (Template, error) {
	if err := t.check(); err != nil {
		return Template{}, err
	}
	invited, err := invitedJSON(t.Invited)
	if err != nil {
		return Template{}, fmt.Errorf("%w: template %s: invited: %w", ErrInvalid, t.E164, err)
	}
	for range casAttempts {
		// One statement: the version check, the content check (a change
		// to what is stored already is no change) and the write.
		stored, err := scanTemplate(db.w.QueryRowContext(ctx, `UPDATE templates SET
			moid = $2, platform = $3, name = $4, scale = $5, resolution = $6, duration_minutes = $7,
			password = $8, public = $9, invited = $10, recording = $11, updated_at = $12, version = version + 1
			WHERE e164 = $1 AND (version = $13 OR $14)
				AND (moid <> $2 OR platform <> $3 OR name <> $4 OR scale <> $5 OR resolution <> $6
					OR duration_minutes <> $7 OR password <> $8 OR public <> $9 OR invited <> $10
					OR recording <> $11)
			RETURNING `+templateCols,
			t.E164, t.Domain, t.Platform, t.Name, t.Scale, t.Resolution, t.DurationMinutes,
			t.Password, t.Public, invited, t.Recording, ms(db.now()), expect, expect == AnyVersion))
		if err == nil {
			return stored, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Template{}, keyed(err, "update template", t.E164)
		}
		// Nothing written: no such template, the content is already
		// there, or the version moved on.
		cur, err := db.Template(ctx, t.E164)
		switch {
		case err != nil:
			return Template{}, err
		case cur.sameContent(t):
			return cur, nil
		case expect != AnyVersion:
			return Template{}, fmt.Errorf("%w: template %s is at version %d, the change was based on version %d", ErrConflict, t.E164, cur.Version, expect)
		}
		// Last writer wins, but another wrote between the update and the
		// read: update again.
	}
	return Template{}, fmt.Errorf("%w: template %s kept changing under %d attempts to update it", ErrConflict, t.E164, casAttempts)
}

// DeleteTemplate removes a template and returns what it held. A repeated
// delete finds nothing: ErrNotFound, which a retry may take as done.
func (db *DB) DeleteTemplate(ctx context.Context, e164 string) (Template, error) {
	t, err := scanTemplate(db.w.QueryRowContext(ctx, "DELETE FROM templates WHERE e164 = $1 RETURNING "+templateCols, e164))
	return t, keyed(err, "delete template", e164)
}

// Template reads one template. Errors: ErrNotFound.
func (db *DB) Template(ctx context.Context, e164 string) (Template, error) {
	t, err := scanTemplate(db.r.QueryRowContext(ctx, "SELECT "+templateCols+" FROM templates WHERE e164 = $1", e164))
	return t, keyed(err, "read template", e164)
}

// TemplatesOf lists a user domain's templates by number.
func (db *DB) TemplatesOf(ctx context.Context, moid string) ([]Template, error) {
	return list(ctx, db.r, scanTemplate, "SELECT "+templateCols+" FROM templates WHERE moid = $1 ORDER BY e164", moid)
}

// AllTemplates lists the templates whose source platform is platform, by
// number.
func (db *DB) AllTemplates(ctx context.Context, platform string) ([]Template, error) {
	return list(ctx, db.r, scanTemplate, "SELECT "+templateCols+" FROM templates WHERE platform = $1 ORDER BY e164", platform)
}

// list runs a query and scans every row.
func list[T any](ctx context.Context, q *sql.DB, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("records: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	return out, nil
}
