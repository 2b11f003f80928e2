package e2e

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/pgtest"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/registry"
	"github.com/convene/convene/internal/scheduler"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

// bookingSide is one platform of the bookings test: its bus, store,
// records database, registry and scheduler.
type bookingSide struct {
	moid  string
	emb   *bus.Embedded
	bus   *bus.Bus // the test's own connection, the CM's
	st    *store.Store
	recs  *records.DB
	reg   *registry.Service
	sched *scheduler.Scheduler
}

// connect opens a connection to a side's bus and store, closed with the
// test.
func (p *bookingSide) connect(t *testing.T, name string) (*bus.Bus, *store.Store) {
	t.Helper()
	b := testkit.Dial(t, bus.Options{Embedded: p.emb, Name: name})
	st := testkit.OpenStore(t, p.st.URL())
	return b, st
}

// startBookingSide starts a platform's bus, store, registry and scheduler;
// its scheduler reaches masters with dial.
func startBookingSide(t *testing.T, cfg config.Config, moid string, recs *records.DB, dial scheduler.Dialer) *bookingSide {
	t.Helper()
	ctx := context.Background()
	p := &bookingSide{moid: moid, recs: recs}
	var err error
	if p.emb, err = bus.StartEmbedded(bus.EmbeddedOptions{NoListen: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.emb.Shutdown)
	redis := redistest.Start(t, redistest.Options{})
	if p.st, err = store.Open(ctx, store.Options{URL: redis.URL()}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.st.Close() })
	p.bus, _ = p.connect(t, "cm-"+moid)
	regBus, _ := p.connect(t, "registry-"+moid)
	if p.reg, err = registry.New(registry.Options{Platform: moid}, regBus, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.reg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.reg.Shutdown(context.Background()) })
	cfg.Platform = moid
	schedBus, _ := p.connect(t, "css-"+moid)
	p.sched, err = scheduler.New(scheduler.Options{Platform: moid, ID: "css-" + moid, StartGrace: time.Minute},
		scheduler.Deps{Bus: schedBus, Store: p.st, Config: &cfg, Records: recs, Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.sched.Kill)
	return p
}

// book puts a booking through a platform's scheduler, as a CM does.
func (p *bookingSide) book(t *testing.T, b protocol.Booking) protocol.Booking {
	t.Helper()
	var ack protocol.BookingAck
	if err := p.bus.Call(context.Background(), protocol.SubjectCMMAU(p.moid), protocol.BookingReq{Type: protocol.CMPutBookingReq, Booking: b}, &ack); err != nil {
		t.Fatalf("book %s on %s: %v", b.E164, p.moid, err)
	}
	return ack.Booking
}

// route asks a platform's registry where a call to e164 goes, as a SIP
// edge does; "" when the registry does not know the number.
func (p *bookingSide) route(t *testing.T, e164 string) protocol.RegistryEntry {
	t.Helper()
	var ack protocol.RegistryQueryAck
	err := p.bus.Call(context.Background(), protocol.SubjectRegistry(p.moid), protocol.RegistryQuery{Type: protocol.UPUQueryReq, E164: e164}, &ack)
	var nack *bus.NackError
	if errors.As(err, &nack) && nack.Code == protocol.ErrNotFound {
		return protocol.RegistryEntry{}
	}
	if err != nil {
		t.Fatal(err)
	}
	return ack.Entry
}

// pms tells a platform's scheduler its state and its masters', as PMS
// does.
func (p *bookingSide) pms(t *testing.T, state string, masters ...protocol.PlatformInfo) {
	t.Helper()
	ntf := protocol.PlatformStateNtf{Type: protocol.PlatformStateNotify, Platform: p.moid, State: state, Masters: masters}
	if err := p.bus.Publish(protocol.SubjectPlatformNotify, ntf); err != nil {
		t.Fatal(err)
	}
}

// Bookings in the records database reach the registries as seed 000 §7.2
// says: the master's registry knows the master's at start; when the master
// fails, the backup's registry gets them with their source domain and the
// backup as real platform (and a booking made on the backup meanwhile
// goes to the master's records), the master's registry forgets them; when
// the master recovers, the backup's registry drops them and the master
// reports its own again, with what was booked during the failure.
func TestBookingsFollowTheFailoverOfTheirPlatform(t *testing.T) {
	cases := []struct {
		name string
		// open gives the master's and the backup's records databases.
		open func(t *testing.T) (a, b *records.DB)
		// reached: the backup reaches the master's records through its
		// connection to the master (each platform its own database).
		reached bool
	}{
		{name: "one SQLite database for both platforms", open: func(t *testing.T) (*records.DB, *records.DB) {
			db := openRecordsAt(t, filepath.Join(t.TempDir(), "records.db"))
			return db, db
		}},
		{name: "PostgreSQL, a database per platform", reached: true, open: func(t *testing.T) (*records.DB, *records.DB) {
			srv := pgtest.StartServer(t)
			for _, name := range []string{"pa", "pb"} {
				if err := srv.CreateDatabase(context.Background(), name); err != nil {
					t.Fatal(err)
				}
			}
			return openRecordsAt(t, srv.URL("pa")), openRecordsAt(t, srv.URL("pb"))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recsA, recsB := c.open(t)
			bookingsFailover(t, recsA, recsB, c.reached)
		})
	}
}

func openRecordsAt(t *testing.T, url string) *records.DB {
	t.Helper()
	db, err := records.Open(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func bookingsFailover(t *testing.T, recsA, recsB *records.DB, reached bool) {
	ctx := context.Background()
	limits := license.Limits{}
	for _, cl := range license.All() {
		limits[cl.String()] = 10
	}
	cfg := config.Config{
		Platforms: []config.Platform{
			{Moid: "pa", NumberSegment: "51", Backups: []string{"pb"}, Rooms: []config.Room{{Moid: "a1", Type: "main"}}},
			{Moid: "pb", NumberSegment: "52", Rooms: []config.Room{{Moid: "b1", Type: "main"}}},
		},
		Domains: []config.Domain{{Moid: "tenant-a", Platform: "pa", License: limits}, {Moid: "tenant-b", Platform: "pb", License: limits}},
	}
	cfg.Platform = "pa"
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := startBookingSide(t, cfg, "pa", recsA, nil)
	b := startBookingSide(t, cfg, "pb", recsB, func(_ context.Context, info protocol.PlatformInfo) (scheduler.Peer, error) {
		if info.Platform != "pa" {
			return scheduler.Peer{}, errors.New("no such platform")
		}
		bb, st := a.connect(t, "css-pb-to-pa")
		p := scheduler.Peer{Bus: bb, Store: st}
		if reached {
			p.Records = recsA
		}
		return p, nil
	})
	start := time.Now().Add(24 * time.Hour).Truncate(time.Millisecond)
	ofA := []protocol.Booking{
		{E164: "5100010", Kind: protocol.EntryVirtual, Name: "A's room", Domain: "tenant-a"},
		{E164: "5100011", Kind: protocol.EntryReserved, Name: "A's review", Domain: "tenant-a", StartTime: start.UnixMilli(), EndTime: start.Add(time.Hour).UnixMilli()},
		{E164: "5100012", Kind: protocol.EntryTemplate, Name: "A's personal template", Domain: "tenant-a"},
	}
	for _, bk := range ofA {
		if got := a.book(t, bk); got.Platform != "pa" {
			t.Fatalf("booked on A: %+v", got)
		}
	}
	var tpl protocol.TemplateAck
	if err := a.bus.Call(ctx, protocol.SubjectCMMAU("pa"), protocol.TemplateReq{Type: protocol.CMCreateTemplateReq, Template: protocol.Template{
		E164: "5100013", Name: "A's all hands", Domain: "tenant-a", Scale: 8, Resolution: "720p", DurationMinutes: 60, Public: true}}, &tpl); err != nil {
		t.Fatal(err)
	}
	if _, err := recsA.Template(ctx, "5100013"); err != nil {
		t.Fatalf("the public template is not in A's records: %v", err)
	}
	b.book(t, protocol.Booking{E164: "5200010", Kind: protocol.EntryVirtual, Name: "B's room", Domain: "tenant-b"})
	numbersOfA := []string{"5100010", "5100011", "5100012", "5100013"}

	for _, e := range numbersOfA {
		testkit.Eventually(t, testkit.Wait, testkit.Cond("A's registry routing "+e+" to A", func() bool {
			r := a.route(t, e)
			return r.RealPlatform == "pa" && r.Platform == "pa" && r.Domain == "tenant-a"
		}))
		if r := b.route(t, e); r.E164 != "" {
			t.Fatalf("B's registry knows A's %s before any failure: %+v", e, r)
		}
	}

	// A fails: B takes it over, A stands down.
	b.pms(t, protocol.PlatformNormal, protocol.PlatformInfo{Platform: "pa", State: protocol.PlatformAbnormal})
	a.pms(t, protocol.PlatformAbnormal)
	for _, e := range numbersOfA {
		testkit.Eventually(t, testkit.Wait, testkit.Cond("B's registry routing A's "+e+" to B", func() bool {
			r := b.route(t, e)
			return r.RealPlatform == "pb" && r.Platform == "pa" && r.Domain == "tenant-a"
		}))
		testkit.Eventually(t, testkit.Wait, testkit.Cond("A's registry forgetting "+e, func() bool { return a.route(t, e).E164 == "" }))
	}
	if r, ok := b.reg.LookupKind("5100011", protocol.EntryReserved); !ok || r.Name != "A's review" {
		t.Fatalf("B's registry holds A's scheduled conference as %+v", r)
	}
	// A booking for A's tenant made on B meanwhile goes to A's records.
	during := b.book(t, protocol.Booking{E164: "5100014", Kind: protocol.EntryVirtual, Name: "booked during the failure", Domain: "tenant-a"})
	if during.Platform != "pa" {
		t.Fatalf("booked on B for A's tenant: %+v", during)
	}
	if got, err := recsA.Booking(ctx, "5100014"); err != nil || got.Platform != "pa" {
		t.Fatalf("the booking made on B is not in A's records: %+v, %v", got, err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("B's registry routing 5100014 to B", func() bool { return b.route(t, "5100014").RealPlatform == "pb" }))

	// A recovers: B's registry drops A's bookings, keeps its own; A
	// reports its own again, with the one booked on B.
	b.pms(t, protocol.PlatformNormal, protocol.PlatformInfo{Platform: "pa", State: protocol.PlatformNormal})
	a.pms(t, protocol.PlatformNormal)
	for _, e := range append(numbersOfA, "5100014") {
		testkit.Eventually(t, testkit.Wait, testkit.Cond("B's registry dropping A's "+e, func() bool { return b.route(t, e).E164 == "" }))
		testkit.Eventually(t, testkit.Wait, testkit.Cond("A's registry routing "+e+" to A again", func() bool {
			r := a.route(t, e)
			return r.RealPlatform == "pa" && r.Platform == "pa"
		}))
	}
	if r := b.route(t, "5200010"); r.RealPlatform != "pb" || r.Platform != "pb" {
		t.Fatalf("B's own room after A's recovery: %+v", r)
	}
}
