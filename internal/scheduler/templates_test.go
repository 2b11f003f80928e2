package scheduler

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

// numbersScheduler starts an active scheduler of platform p1 (segment 51,
// five digits) on a real redis-server, with no media node.
func numbersScheduler(t *testing.T, maxMinutes int) (*Scheduler, *store.Store) {
	t.Helper()
	return recordsScheduler(t, maxMinutes, nil)
}

// recordsScheduler is numbersScheduler keeping its templates and
// bookings in recs (none when nil); beforeStart run on its bus before it
// starts.
func recordsScheduler(t *testing.T, maxMinutes int, recs Records, beforeStart ...func(*bus.Bus)) (*Scheduler, *store.Store) {
	t.Helper()
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = 10
	}
	cfg := &config.Config{
		Platforms: []config.Platform{{Moid: "p1", NumberSegment: "51", Rooms: []config.Room{{Moid: "r1", Type: "main"}}}},
		Domains:   []config.Domain{{Moid: "acme", Platform: "p1", License: limits}},
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	emb := testkit.BusServer(t, bus.EmbeddedOptions{NoListen: true})
	b := testkit.Dial(t, bus.Options{Embedded: emb, Name: "numbers-test"})
	st := testkit.Store(t, testkit.RedisServer)
	for _, f := range beforeStart {
		f(b)
	}
	s, err := New(Options{Platform: "p1", MaxDurationMinutes: maxMinutes, StartGrace: time.Minute}, Deps{Bus: b, Store: st, Config: cfg, Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	return s, st
}

// Templates: a create never replaces a template, a number is a
// conference's or a template's, and numbers outside the platform's
// segment are refused with their own code.
func TestTemplateNumbers(t *testing.T) {
	s, st := numbersScheduler(t, 0)
	ctx := context.Background()
	tpl := func(e164, name string) protocol.Template {
		return protocol.Template{E164: e164, Name: name, Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 30}
	}
	first, err := s.Template(ctx, protocol.CMCreateTemplateReq, tpl("5100100", "first"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Template(ctx, protocol.CMCreateTemplateReq, tpl("5100100", "second")); Code(err) != protocol.ErrE164InUse {
		t.Fatalf("a second create of one number: %v", err)
	}
	if got, _ := st.Template(ctx, "5100100"); got.Name != "first" {
		t.Fatalf("the template is now %q", got.Name)
	}
	mod, err := s.Template(ctx, protocol.CMModifyTemplateReq, tpl("5100100", "renamed"))
	if err != nil || mod.Name != "renamed" || mod.CreateTime != first.CreateTime {
		t.Fatalf("modify = %+v, %v; want the creation time %d kept", mod, err, first.CreateTime)
	}
	if _, err := s.Template(ctx, protocol.CMModifyTemplateReq, tpl("5100199", "x")); Code(err) != protocol.ErrTemplateNotFound {
		t.Fatalf("modify of a missing template: %v", err)
	}

	class, _ := license.ClassOf(8, "720p")
	if _, err := st.Reserve(ctx, store.Reservation{
		Conf:  protocol.Conference{E164: "5100200", Name: "c", Domain: "acme", Platform: "p1", Scale: 8, Resolution: "720p", DurationMinutes: 60, EndTime: time.Now().Add(time.Hour).UnixMilli()},
		Class: class,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Template(ctx, protocol.CMCreateTemplateReq, tpl("5100200", "x")); Code(err) != protocol.ErrE164InUse {
		t.Fatalf("a template on a conference's number: %v", err)
	}
	_, err = s.Template(ctx, protocol.CMCreateTemplateReq, tpl("6600300", "x"))
	if Code(err) != protocol.ErrE164OutOfSegment || !strings.Contains(err.Error(), "51 followed by 5 digits") {
		t.Fatalf("a number outside the segment: %v", err)
	}
}

// The longest booking holds for a conference's total length: two delays
// that each fit but together pass it are refused, saying what remains.
func TestDelaysStayWithinTheLongestBooking(t *testing.T) {
	const max = 120
	s, st := numbersScheduler(t, max)
	ctx := context.Background()
	class, _ := license.ClassOf(8, "720p")
	if _, err := st.Reserve(ctx, store.Reservation{
		Conf:  protocol.Conference{E164: "5100400", Name: "c", Domain: "acme", Platform: "p1", Scale: 8, Resolution: "720p", DurationMinutes: 60, EndTime: time.Now().Add(time.Hour).UnixMilli()},
		Class: class,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Commit(ctx, store.Placement{E164: "5100400", Node: "n1", Room: "r1", RealPlatform: "p1"}); err != nil {
		t.Fatal(err)
	}
	if ntf, err := s.Delay(ctx, "5100400", 50); err != nil || ntf.DurationMinutes != 110 {
		t.Fatalf("first delay = %+v, %v", ntf, err)
	}
	_, err := s.Delay(ctx, "5100400", 50)
	if Code(err) != protocol.ErrDurationLimit || !strings.Contains(err.Error(), "delay it by 10 minutes or less") {
		t.Fatalf("a delay past the longest booking: %v", err)
	}
	if c, _ := st.Conference(ctx, "5100400"); c.DurationMinutes != 110 {
		t.Fatalf("the refused delay left %d minutes", c.DurationMinutes)
	}
	if _, err := s.Delay(ctx, "5100400", 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delay(ctx, "5100400", 1); Code(err) != protocol.ErrDurationLimit || !strings.Contains(err.Error(), "cannot be made longer") {
		t.Fatalf("a delay at the longest booking: %v", err)
	}
}

// openRecords opens a records database in a SQLite file of the test's.
func openRecords(t *testing.T) *records.DB {
	t.Helper()
	db, err := records.Open(context.Background(), filepath.Join(t.TempDir(), "records.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// faultyRecords is a records database whose template writes fail on
// demand: before writing (refuse), or after (lose the reply); down makes
// every template call fail.
type faultyRecords struct {
	*records.DB
	refuse, loseReply, down atomic.Bool
}

var errRecordsDown = errors.New("records: connection refused")

func (f *faultyRecords) CreateTemplate(ctx context.Context, t records.Template) (records.Template, error) {
	if f.refuse.Load() || f.down.Load() {
		return records.Template{}, errRecordsDown
	}
	out, err := f.DB.CreateTemplate(ctx, t)
	if f.loseReply.Load() {
		return records.Template{}, errRecordsDown
	}
	return out, err
}

func (f *faultyRecords) Template(ctx context.Context, e164 string) (records.Template, error) {
	if f.down.Load() {
		return records.Template{}, errRecordsDown
	}
	return f.DB.Template(ctx, e164)
}

func (f *faultyRecords) DeleteTemplate(ctx context.Context, e164 string) (records.Template, error) {
	if f.down.Load() {
		return records.Template{}, errRecordsDown
	}
	return f.DB.DeleteTemplate(ctx, e164)
}

func recordedTemplate(e164, name string) protocol.Template {
	return protocol.Template{E164: e164, Name: name, Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 30, Invited: []string{"alice"}}
}

// With a records database, a template lives in SQL and the store keeps a
// copy that holds its number; every write is safe to repeat after a lost
// reply, and reads come from SQL.
func TestRecordedTemplatesAreSafeToRepeat(t *testing.T) {
	db := openRecords(t)
	s, st := recordsScheduler(t, 0, db)
	ctx := context.Background()

	first, err := s.Template(ctx, protocol.CMCreateTemplateReq, recordedTemplate("5100100", "board"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Template(ctx, protocol.CMCreateTemplateReq, recordedTemplate("5100100", "board"))
	if err != nil || again.CreateTime != first.CreateTime {
		t.Fatalf("a create repeated after a lost reply = %+v, %v; want the first one, %+v", again, err, first)
	}
	if _, err := s.Template(ctx, protocol.CMCreateTemplateReq, recordedTemplate("5100100", "other")); Code(err) != protocol.ErrE164InUse {
		t.Fatalf("another template on the number: %v", err)
	}
	rec, err := db.Template(ctx, "5100100")
	if err != nil || rec.Name != "board" || rec.Platform != "p1" || rec.Version != 1 || rec.CreatedAt.UnixMilli() != first.CreateTime {
		t.Fatalf("in SQL: %+v, %v", rec, err)
	}
	if cp, err := st.Template(ctx, "5100100"); err != nil || !sameTemplate(cp, first) {
		t.Fatalf("the store's copy = %+v, %v; want %+v", cp, err, first)
	}

	for range 2 {
		mod, err := s.Template(ctx, protocol.CMModifyTemplateReq, recordedTemplate("5100100", "board (renamed)"))
		if err != nil || mod.Name != "board (renamed)" || mod.CreateTime != first.CreateTime {
			t.Fatalf("modify = %+v, %v", mod, err)
		}
	}
	if rec, _ := db.Template(ctx, "5100100"); rec.Version != 2 {
		t.Fatalf("a modify repeated changed the template again: version %d, want 2", rec.Version)
	}
	if cp, _ := st.Template(ctx, "5100100"); cp.Name != "board (renamed)" {
		t.Fatalf("the store's copy is %q", cp.Name)
	}

	// A copy SQL does not hold is no template: a modify reads SQL.
	if _, err := st.CreateTemplate(ctx, protocol.Template{E164: "5100101", Name: "stray", Domain: "acme", Platform: "p1"}, store.Numbering{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Template(ctx, protocol.CMModifyTemplateReq, recordedTemplate("5100101", "x")); Code(err) != protocol.ErrTemplateNotFound {
		t.Fatalf("modify of a template only the store holds: %v", err)
	}

	if _, err := s.Template(ctx, protocol.CMDeleteTemplateReq, protocol.Template{E164: "5100100"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Template(ctx, protocol.CMDeleteTemplateReq, protocol.Template{E164: "5100100"}); Code(err) != protocol.ErrTemplateNotFound {
		t.Fatalf("a delete repeated: %v", err)
	}
	if _, err := db.Template(ctx, "5100100"); !errors.Is(err, records.ErrNotFound) {
		t.Fatalf("deleted, SQL still has it: %v", err)
	}
	if _, err := st.Template(ctx, "5100100"); !errors.Is(err, store.ErrTemplateNotFound) {
		t.Fatalf("deleted, the store still holds the number: %v", err)
	}
}

// A create whose SQL write fails leaves no number reserved for a template
// SQL does not hold: at once when SQL answers, at the next settling pass
// when it does not; a template SQL took whose reply was lost keeps its
// number, and the retry succeeds.
func TestRecordedTemplateWriteFailures(t *testing.T) {
	cases := []struct {
		name string
		// fault is set for the first create, cleared for the retry.
		fault func(f *faultyRecords) *atomic.Bool
		// settle runs a settling pass before the checks.
		settle bool
		// kept: the store still holds the number after the failure.
		kept bool
	}{
		{name: "SQL refuses the write", fault: func(f *faultyRecords) *atomic.Bool { return &f.refuse }},
		{name: "SQL takes the write, its reply is lost", fault: func(f *faultyRecords) *atomic.Bool { return &f.loseReply }, kept: true},
		{name: "SQL down, settled by the next pass", fault: func(f *faultyRecords) *atomic.Bool { return &f.down }, settle: true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &faultyRecords{DB: openRecords(t)}
			s, st := recordsScheduler(t, 0, f)
			ctx := context.Background()
			e164 := fmt.Sprintf("510020%d", i)
			fault := c.fault(f)
			fault.Store(true)
			if _, err := s.Template(ctx, protocol.CMCreateTemplateReq, recordedTemplate(e164, "board")); Code(err) != codes.RecordsUnavailable {
				t.Fatalf("create with SQL failing: %v, want %s", err, codes.RecordsUnavailable)
			}
			if c.settle {
				if _, err := st.Template(ctx, e164); err != nil {
					t.Fatalf("with SQL down, the copy cannot be judged and stays until SQL answers: %v", err)
				}
				fault.Store(false)
				s.settleTemplatesBefore(ctx, time.Now().Add(time.Hour))
			}
			_, err := st.Template(ctx, e164)
			if c.kept && err != nil {
				t.Fatalf("the template SQL holds lost its number: %v", err)
			}
			if !c.kept && !errors.Is(err, store.ErrTemplateNotFound) {
				t.Fatalf("the number stays reserved for a template SQL does not hold: %v", err)
			}
			fault.Store(false)
			got, err := s.Template(ctx, protocol.CMCreateTemplateReq, recordedTemplate(e164, "board"))
			if err != nil || got.E164 != e164 {
				t.Fatalf("the retry = %+v, %v", got, err)
			}
			if rec, err := f.DB.Template(ctx, e164); err != nil || rec.Version != 1 {
				t.Fatalf("in SQL after the retry: %+v, %v", rec, err)
			}
		})
	}
}

// The settling pass makes the store's copies agree with SQL once their
// last write is old enough: a copy SQL lacks frees its number, a template
// SQL holds gets its copy (and number) back, a stale copy is rewritten;
// recent disagreement (a write in flight) is left alone.
func TestSettlingTemplateCopies(t *testing.T) {
	db := openRecords(t)
	s, st := recordsScheduler(t, 0, db)
	ctx := context.Background()
	if _, err := s.Template(ctx, protocol.CMCreateTemplateReq, recordedTemplate("5100301", "lost copy")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Template(ctx, protocol.CMCreateTemplateReq, recordedTemplate("5100302", "stale copy")); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteTemplate(ctx, "5100301"); err != nil {
		t.Fatal(err)
	}
	stale := recordedTemplate("5100302", "what the store says")
	stale.Platform = "p1"
	if _, err := st.PutTemplate(ctx, stale, store.Numbering{}); err != nil {
		t.Fatal(err)
	}
	orphan := recordedTemplate("5100303", "orphan")
	orphan.Platform, orphan.ModifyTime = "p1", time.Now().UnixMilli()
	if _, err := st.CreateTemplate(ctx, orphan, store.Numbering{}); err != nil {
		t.Fatal(err)
	}

	s.settleTemplates(ctx) // everything was written just now: nothing moves
	if _, err := st.Template(ctx, "5100303"); err != nil {
		t.Fatalf("a copy written just now (a create in flight) was removed: %v", err)
	}
	if _, err := st.Template(ctx, "5100301"); !errors.Is(err, store.ErrTemplateNotFound) {
		t.Fatalf("a copy restored while its template was written just now: %v", err)
	}

	s.settleTemplatesBefore(ctx, time.Now().Add(time.Hour))
	if cp, err := st.Template(ctx, "5100301"); err != nil || cp.Name != "lost copy" {
		t.Fatalf("the template SQL holds got no copy back: %+v, %v", cp, err)
	}
	if cp, _ := st.Template(ctx, "5100302"); cp.Name != "stale copy" {
		t.Fatalf("the stale copy says %q", cp.Name)
	}
	if _, err := st.Template(ctx, "5100303"); !errors.Is(err, store.ErrTemplateNotFound) {
		t.Fatalf("the orphan copy still holds its number: %v", err)
	}
	// Its number is free: a conference takes it.
	class, _ := license.ClassOf(8, "720p")
	if _, err := st.Reserve(ctx, store.Reservation{
		Conf:  protocol.Conference{E164: "5100303", Name: "c", Domain: "acme", Platform: "p1", Scale: 8, Resolution: "720p", DurationMinutes: 60, EndTime: time.Now().Add(time.Hour).UnixMilli()},
		Class: class,
	}); err != nil {
		t.Fatalf("the freed number: %v", err)
	}
	// The number is the conference's now: a template cannot take it, and
	// SQL gets no row for it.
	if _, err := s.Template(ctx, protocol.CMCreateTemplateReq, recordedTemplate("5100303", "late")); Code(err) != protocol.ErrE164InUse {
		t.Fatalf("a template on a conference's number: %v", err)
	}
	if _, err := db.Template(ctx, "5100303"); !errors.Is(err, records.ErrNotFound) {
		t.Fatalf("SQL got a template the store refused: %v", err)
	}
}

// A delete whose store step failed leaves a copy; the retry removes it and
// answers the delete done.
func TestRecordedTemplateDeleteRetry(t *testing.T) {
	db := openRecords(t)
	s, st := recordsScheduler(t, 0, db)
	ctx := context.Background()
	if _, err := s.Template(ctx, protocol.CMCreateTemplateReq, recordedTemplate("5100400", "board")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteTemplate(ctx, "5100400"); err != nil { // the first attempt's SQL step
		t.Fatal(err)
	}
	got, err := s.Template(ctx, protocol.CMDeleteTemplateReq, protocol.Template{E164: "5100400"})
	if err != nil || got.E164 != "5100400" {
		t.Fatalf("the retried delete = %+v, %v", got, err)
	}
	if _, err := st.Template(ctx, "5100400"); !errors.Is(err, store.ErrTemplateNotFound) {
		t.Fatalf("the copy outlived the delete: %v", err)
	}
}
