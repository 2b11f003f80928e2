package records_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/records"
)

func tpl(e164 string) records.Template {
	return records.Template{
		E164: e164, Domain: "acme", Platform: "p1", Name: "board", Scale: 32, Resolution: "1080p",
		DurationMinutes: 90, Password: "4711", Public: true, Invited: []string{"6000001", "alice@acme"}, Recording: true,
	}
}

// content is a template without what the database sets.
func content(t records.Template) records.Template {
	t.CreatedAt, t.UpdatedAt, t.Version = time.Time{}, time.Time{}, 0
	return t
}

func TestTemplateLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		clk := newClock(db)
		created := clk.now

		want := tpl("6600001")
		got, err := db.CreateTemplate(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(content(got), want) || got.Version != 1 || !got.CreatedAt.Equal(created) || !got.UpdatedAt.Equal(created) {
			t.Fatalf("created %+v, want %+v at version 1, created and updated %v", got, want, created)
		}
		if read, err := db.Template(ctx, "6600001"); err != nil || !reflect.DeepEqual(read, got) {
			t.Fatalf("Template = %+v, %v; want %+v", read, err, got)
		}

		// A retried create changes nothing; a different one is refused.
		clk.advance(time.Minute)
		if again, err := db.CreateTemplate(ctx, want); err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("retried create = %+v, %v; want the stored %+v unchanged", again, err, got)
		}
		other := want
		other.Name = "another"
		if _, err := db.CreateTemplate(ctx, other); !errors.Is(err, records.ErrExists) {
			t.Fatalf("create over a different template = %v, want ErrExists", err)
		}

		// An update based on version 1 applies once; its retry is no change.
		clk.advance(time.Minute)
		changed := want
		changed.Name, changed.Invited, changed.Public, changed.Password = "board 2", nil, false, ""
		v2, err := db.UpdateTemplate(ctx, changed, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(content(v2), changed) || v2.Version != 2 || !v2.CreatedAt.Equal(created) || !v2.UpdatedAt.Equal(clk.now) {
			t.Fatalf("updated %+v, want %+v at version 2, created %v, updated %v", v2, changed, created, clk.now)
		}
		clk.advance(time.Minute)
		if again, err := db.UpdateTemplate(ctx, changed, 1); err != nil || !reflect.DeepEqual(again, v2) {
			t.Fatalf("retried update = %+v, %v; want %+v unchanged", again, err, v2)
		}
		stale := changed
		stale.Name = "board 3"
		if _, err := db.UpdateTemplate(ctx, stale, 1); !errors.Is(err, records.ErrConflict) {
			t.Fatalf("update based on version 1 of a version 2 = %v, want ErrConflict", err)
		}
		if v3, err := db.UpdateTemplate(ctx, stale, records.AnyVersion); err != nil || v3.Version != 3 || v3.Name != "board 3" {
			t.Fatalf("last-writer-wins update = %+v, %v; want version 3", v3, err)
		}
		if _, err := db.UpdateTemplate(ctx, tpl("6600999"), records.AnyVersion); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("update of a missing template = %v, want ErrNotFound", err)
		}

		// Deleting returns what it removed; a repeat finds nothing.
		gone, err := db.DeleteTemplate(ctx, "6600001")
		if err != nil || gone.Name != "board 3" || gone.Version != 3 {
			t.Fatalf("DeleteTemplate = %+v, %v", gone, err)
		}
		if _, err := db.DeleteTemplate(ctx, "6600001"); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("repeated delete = %v, want ErrNotFound", err)
		}
		if _, err := db.Template(ctx, "6600001"); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("Template after delete = %v, want ErrNotFound", err)
		}
		// The number is free again.
		if again, err := db.CreateTemplate(ctx, want); err != nil || again.Version != 1 {
			t.Fatalf("create after delete = %+v, %v; want version 1", again, err)
		}
	})
}

func TestTemplateListsByDomainAndPlatform(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		for _, x := range []struct{ e164, moid, platform string }{
			{"6600003", "acme", "p1"}, {"6600001", "acme", "p1"}, {"6700001", "acme", "p2"}, {"6600002", "globex", "p1"},
		} {
			tp := tpl(x.e164)
			tp.Domain, tp.Platform = x.moid, x.platform
			if _, err := db.CreateTemplate(ctx, tp); err != nil {
				t.Fatal(err)
			}
		}
		numbers := func(ts []records.Template, err error) string {
			if err != nil {
				return err.Error()
			}
			var out []string
			for _, t := range ts {
				out = append(out, t.E164)
			}
			return strings.Join(out, ",")
		}
		for _, c := range []struct {
			name string
			got  string
			want string
		}{
			{"of acme", numbers(db.TemplatesOf(ctx, "acme")), "6600001,6600003,6700001"},
			{"of globex", numbers(db.TemplatesOf(ctx, "globex")), "6600002"},
			{"of nobody", numbers(db.TemplatesOf(ctx, "nobody")), ""},
			{"on p1", numbers(db.AllTemplates(ctx, "p1")), "6600001,6600002,6600003"},
			{"on p2", numbers(db.AllTemplates(ctx, "p2")), "6700001"},
		} {
			if c.got != c.want {
				t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
			}
		}
	})
}

func TestTemplateRefusesWhatTheSchemaCannotHold(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		for name, edit := range map[string]func(*records.Template){
			"no e164":     func(t *records.Template) { t.E164 = "" },
			"no domain":   func(t *records.Template) { t.Domain = "" },
			"no platform": func(t *records.Template) { t.Platform = "" },
		} {
			tp := tpl("6600001")
			edit(&tp)
			if _, err := db.CreateTemplate(ctx, tp); !errors.Is(err, records.ErrInvalid) {
				t.Errorf("create with %s = %v, want ErrInvalid", name, err)
			}
			if _, err := db.UpdateTemplate(ctx, tp, records.AnyVersion); !errors.Is(err, records.ErrInvalid) {
				t.Errorf("update with %s = %v, want ErrInvalid", name, err)
			}
		}
	})
}

// Writers racing on one template lose no change: each update is one
// version, and the last content is one of theirs.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		// Two handles on one database: two processes, each with its own
		// pool (and, on SQLite, its own writer connection).
		dbs := []*records.DB{open(t, url), open(t, url)}
		if _, err := dbs[0].CreateTemplate(ctx, tpl("6600001")); err != nil {
			t.Fatal(err)
		}
		const writers, updates = 4, 15
		var wg sync.WaitGroup
		errs := make(chan error, writers*updates*3)
		for w := range writers {
			db := dbs[w%len(dbs)]
			wg.Go(func() {
				for i := range updates {
					tp := tpl("6600001")
					tp.Name = fmt.Sprintf("writer %d update %d", w, i)
					if _, err := db.UpdateTemplate(ctx, tp, records.AnyVersion); err != nil {
						errs <- err
					}
					own := tpl(fmt.Sprintf("66%02d%03d", w+10, i))
					if _, err := db.CreateTemplate(ctx, own); err != nil {
						errs <- err
					}
					if _, err := db.PutBooking(ctx, booking(fmt.Sprintf("67%02d%03d", w+10, i), records.KindVirtual)); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent write: %v", err) // SQLITE_BUSY among them if writes were not serialized
		}
		got, err := dbs[1].Template(ctx, "6600001")
		if err != nil || got.Version != 1+writers*updates {
			t.Fatalf("after %d updates: version %d (%v), want %d", writers*updates, got.Version, err, 1+writers*updates)
		}
		all, err := dbs[0].AllTemplates(ctx, "p1")
		if err != nil || len(all) != 1+writers*updates {
			t.Fatalf("%d templates (%v), want %d", len(all), err, 1+writers*updates)
		}
	})
}

func TestTemplateLogsNoPassword(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("template", "template", tpl("6600001"))
	if strings.Contains(buf.String(), "4711") || strings.Contains(buf.String(), "alice") || !strings.Contains(buf.String(), "6600001") {
		t.Fatalf("logged %s: want the number without password and invitees", buf.String())
	}
}
