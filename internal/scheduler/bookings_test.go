package scheduler

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/testkit"
)

// registryTap keeps what schedulers tell a platform's registry.
type registryTap struct {
	mu      sync.Mutex
	entries map[string]protocol.RegistryEntry // e164 -> last added, until deleted
	clears  []protocol.RegistryClearNtf
}

func tapRegistry(t *testing.T, b *bus.Bus, platform string) *registryTap {
	t.Helper()
	r := &registryTap{entries: map[string]protocol.RegistryEntry{}}
	sub, err := b.Subscribe(protocol.SubjectRegistry(platform), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		r.mu.Lock()
		defer r.mu.Unlock()
		switch m.Type {
		case protocol.UPUConfAddNtf, protocol.UPUConfDelNtf:
			var ntf protocol.RegistryNtf
			if err := m.Decode(&ntf); err != nil {
				t.Error(err)
				return
			}
			if m.Type == protocol.UPUConfAddNtf {
				r.entries[ntf.Entry.E164] = ntf.Entry
			} else {
				delete(r.entries, ntf.Entry.E164)
			}
		case protocol.UPUClearBookingsNtf:
			var ntf protocol.RegistryClearNtf
			if err := m.Decode(&ntf); err != nil {
				t.Error(err)
				return
			}
			r.clears = append(r.clears, ntf)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *registryTap) entry(e164 string) (protocol.RegistryEntry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[e164]
	return e, ok
}

func bookingReq(typ string, b protocol.Booking) protocol.BookingReq {
	return protocol.BookingReq{Type: typ, Booking: b}
}

// A CM books numbers over the bus: a put is safe to repeat, each booking
// is reported to the registry with the platform it is called on, a
// tenant sees only its own, and a delete repeated answers
// BOOKING_NOT_FOUND.
func TestBookingsOverTheBus(t *testing.T) {
	db := openRecords(t)
	s, _ := recordsScheduler(t, 0, db)
	reg := tapRegistry(t, s.bus, "p1")
	ctx := context.Background()
	subject := protocol.SubjectCMMAU("p1")
	start := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	room := protocol.Booking{E164: "5100500", Kind: protocol.EntryVirtual, Name: "the big room", Domain: "acme"}
	weekly := protocol.Booking{E164: "5100501", Kind: protocol.EntryReserved, Name: "weekly", Domain: "acme",
		StartTime: start.UnixMilli(), EndTime: start.Add(time.Hour).UnixMilli()}

	var first protocol.BookingAck
	for i, b := range []protocol.Booking{room, weekly, room} {
		var ack protocol.BookingAck
		if err := s.bus.Call(ctx, subject, bookingReq(protocol.CMPutBookingReq, b), &ack); err != nil {
			t.Fatalf("put %s: %v", b.E164, err)
		}
		if ack.Type != protocol.MAUPutBookingAck || ack.Booking.Platform != "p1" || ack.Booking.Version != 1 {
			t.Fatalf("put %s answered %+v", b.E164, ack)
		}
		if i == 0 {
			first = ack
		}
	}
	if got, _ := db.Booking(ctx, room.E164); got.Version != 1 || got.UpdatedAt.UnixMilli() != first.Booking.ModifyTime {
		t.Fatalf("a put repeated changed the booking: %+v", got)
	}
	if got, _ := db.Booking(ctx, weekly.E164); got.Kind != records.KindReserve || !got.StartAt.Equal(start) || !got.EndAt.Equal(start.Add(time.Hour)) {
		t.Fatalf("the scheduled conference in SQL: %+v", got)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("both bookings in the registry", func() bool {
		e, ok := reg.entry(weekly.E164)
		r, ok2 := reg.entry(room.E164)
		return ok && ok2 && e.Kind == protocol.EntryReserved && e.RealPlatform == "p1" && e.Platform == "p1" && e.Domain == "acme" &&
			r.Kind == protocol.EntryVirtual && r.Name == "the big room"
	}))

	var list protocol.BookingListAck
	if err := s.bus.Call(ctx, subject, protocol.BookingListReq{Type: protocol.CMListBookingsReq, Domain: "acme"}, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Bookings) != 2 || list.Bookings[0].E164 != room.E164 || list.Bookings[1].StartTime != weekly.StartTime {
		t.Fatalf("the domain's bookings: %+v", list.Bookings)
	}
	var nack *bus.NackError
	err := s.bus.Call(ctx, subject, bookingReq(protocol.CMGetBookingReq, protocol.Booking{E164: room.E164, Domain: "other"}), nil)
	if !errors.As(err, &nack) || nack.Code != codes.BookingNotFound {
		t.Fatalf("another domain's booking: %v", err)
	}

	var del protocol.BookingAck
	if err := s.bus.Call(ctx, subject, bookingReq(protocol.CMDeleteBookingReq, protocol.Booking{E164: room.E164}), &del); err != nil || del.Booking.Kind != protocol.EntryVirtual {
		t.Fatalf("delete = %+v, %v", del, err)
	}
	err = s.bus.Call(ctx, subject, bookingReq(protocol.CMDeleteBookingReq, protocol.Booking{E164: room.E164}), nil)
	if !errors.As(err, &nack) || nack.Code != codes.BookingNotFound {
		t.Fatalf("a delete repeated: %v", err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the room gone from the registry", func() bool { _, ok := reg.entry(room.E164); return !ok }))
}

// What a booking must say, checked before anything is written.
func TestBookingValidation(t *testing.T) {
	s, _ := recordsScheduler(t, 120, openRecords(t))
	ctx := context.Background()
	at := time.Now().Add(time.Hour).UnixMilli()
	cases := []struct {
		name string
		b    protocol.Booking
		code string
	}{
		{"no name", protocol.Booking{E164: "5100600", Kind: protocol.EntryVirtual, Domain: "acme"}, codes.BadRequest},
		{"bad number", protocol.Booking{E164: "51-00", Kind: protocol.EntryVirtual, Name: "r", Domain: "acme"}, codes.BadRequest},
		{"a running conference is no booking", protocol.Booking{E164: "5100600", Kind: protocol.EntryInstant, Name: "r", Domain: "acme"}, codes.BadRequest},
		{"unknown kind", protocol.Booking{E164: "5100600", Kind: 9, Name: "r", Domain: "acme"}, codes.BadRequest},
		{"scheduled without times", protocol.Booking{E164: "5100600", Kind: protocol.EntryReserved, Name: "r", Domain: "acme"}, codes.BadRequest},
		{"scheduled ending before it starts", protocol.Booking{E164: "5100600", Kind: protocol.EntryReserved, Name: "r", Domain: "acme", StartTime: at, EndTime: at - 1}, codes.BadRequest},
		{"scheduled longer than a conference may last", protocol.Booking{E164: "5100600", Kind: protocol.EntryReserved, Name: "r", Domain: "acme", StartTime: at, EndTime: at + int64(121*time.Minute/time.Millisecond)}, codes.DurationLimit},
		{"a virtual room with times", protocol.Booking{E164: "5100600", Kind: protocol.EntryVirtual, Name: "r", Domain: "acme", StartTime: at, EndTime: at + 1}, codes.BadRequest},
		{"unknown domain", protocol.Booking{E164: "5100600", Kind: protocol.EntryVirtual, Name: "r", Domain: "nobody"}, codes.DomainNotFound},
		{"outside the segment", protocol.Booking{E164: "6600600", Kind: protocol.EntryVirtual, Name: "r", Domain: "acme"}, codes.E164OutOfSegment},
		{"too short for the segment", protocol.Booking{E164: "51006", Kind: protocol.EntryVirtual, Name: "r", Domain: "acme"}, codes.E164OutOfSegment},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.PutBooking(ctx, c.b); Code(err) != c.code {
				t.Fatalf("put %+v: %v, want %s", c.b, err, c.code)
			}
		})
	}
	if bs, err := s.Bookings(ctx, "acme"); err != nil || len(bs) != 0 {
		t.Fatalf("refused bookings were written: %+v, %v", bs, err)
	}
}

// Without a records database bookings are refused with a code that says
// what to do; templates stay in the store as before.
func TestBookingsNeedRecords(t *testing.T) {
	s, _ := recordsScheduler(t, 0, nil)
	ctx := context.Background()
	_, err := s.PutBooking(ctx, protocol.Booking{E164: "5100700", Kind: protocol.EntryVirtual, Name: "r", Domain: "acme"})
	if Code(err) != codes.RecordsUnavailable {
		t.Fatalf("put without records: %v", err)
	}
	if _, err := s.Booking(ctx, "5100700", ""); Code(err) != codes.RecordsUnavailable {
		t.Fatalf("get without records: %v", err)
	}
}

// The scheduler reports its platform's bookings and public templates to
// its registry when it becomes active, and makes the registry forget them
// while its platform is switched over, reporting them again when it is
// back (000 §7.1, §7.2).
func TestBookingsReportedAtStartAndAroundASwitchOver(t *testing.T) {
	db := openRecords(t)
	ctx := context.Background()
	if _, err := db.PutBooking(ctx, records.Booking{E164: "5100800", Kind: records.KindVirtual, Domain: "acme", Platform: "p1", Name: "room"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateTemplate(ctx, records.Template{E164: "5100801", Domain: "acme", Platform: "p1", Name: "all hands", Scale: 8, Resolution: "720p", DurationMinutes: 30}); err != nil {
		t.Fatal(err)
	}
	var reg *registryTap
	s, _ := recordsScheduler(t, 0, db, func(b *bus.Bus) { reg = tapRegistry(t, b, "p1") })
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the booking and the template reported at start", func() bool {
		b, ok := reg.entry("5100800")
		tp, ok2 := reg.entry("5100801")
		return ok && ok2 && b.Kind == protocol.EntryVirtual && b.RealPlatform == "p1" && tp.Kind == protocol.EntryTemplate
	}))

	s.dr.apply(ctx, protocol.PlatformStateNtf{Platform: "p1", State: protocol.PlatformAbnormal})
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the registry told to forget p1's bookings", func() bool {
		reg.mu.Lock()
		defer reg.mu.Unlock()
		return len(reg.clears) == 1 && reg.clears[0].Reporter == "p1" && reg.clears[0].Platform == "p1"
	}))
	reg.mu.Lock()
	reg.entries = map[string]protocol.RegistryEntry{}
	reg.mu.Unlock()
	s.dr.apply(ctx, protocol.PlatformStateNtf{Platform: "p1", State: protocol.PlatformNormal})
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the booking reported again", func() bool { _, ok := reg.entry("5100800"); return ok }))
}
