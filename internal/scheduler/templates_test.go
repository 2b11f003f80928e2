package scheduler

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/store"
)

// numbersScheduler starts an active scheduler of platform p1 (segment 51,
// five digits) on a real redis-server, with no media node.
func numbersScheduler(t *testing.T, maxMinutes int) (*Scheduler, *store.Store) {
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
	emb, err := bus.StartEmbedded(bus.EmbeddedOptions{NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	b, err := bus.Connect(bus.Options{Embedded: emb, Name: "numbers-test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	r := redistest.Start(t, redistest.Options{})
	st, err := store.Open(context.Background(), store.Options{URL: r.URL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s, err := New(Options{Platform: "p1", MaxDurationMinutes: maxMinutes, StartGrace: time.Minute}, Deps{Bus: b, Store: st, Config: cfg})
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
