package records_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
)

var (
	start = time.Date(2025, 3, 2, 10, 0, 0, 0, time.UTC)
	end   = start.Add(time.Hour)
)

func booking(e164 string, kind records.Kind) records.Booking {
	b := records.Booking{E164: e164, Kind: kind, Domain: "acme", Platform: "p1", Name: "weekly"}
	if kind == records.KindReserve {
		b.StartAt, b.EndAt = start, end
	}
	return b
}

func bookingContent(b records.Booking) records.Booking {
	b.CreatedAt, b.UpdatedAt, b.Version = time.Time{}, time.Time{}, 0
	return b
}

// The kinds are the seed's EConfType values, which the registry speaks.
func TestKindsAreTheRegistrysKinds(t *testing.T) {
	for k, want := range map[records.Kind]int{
		records.KindInstant: protocol.EntryInstant, records.KindReserve: protocol.EntryReserved,
		records.KindTemplate: protocol.EntryTemplate, records.KindVirtual: protocol.EntryVirtual,
	} {
		if int(k) != want {
			t.Errorf("%s = %d, registry's %d", k, int(k), want)
		}
	}
}

func TestBookingPutIsIdempotentAndCountsChanges(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		clk := newClock(db)
		created := clk.now

		want := booking("6800001", records.KindReserve)
		got, err := db.PutBooking(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(bookingContent(got), want) || got.Version != 1 || !got.CreatedAt.Equal(created) {
			t.Fatalf("put %+v, want %+v at version 1", got, want)
		}
		clk.advance(time.Minute)
		if again, err := db.PutBooking(ctx, want); err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("repeated put = %+v, %v; want %+v unchanged", again, err, got)
		}

		moved := want
		moved.StartAt, moved.EndAt = start.Add(24*time.Hour), end.Add(24*time.Hour)
		v2, err := db.PutBooking(ctx, moved)
		if err != nil || v2.Version != 2 || !v2.StartAt.Equal(moved.StartAt) || !v2.CreatedAt.Equal(created) || !v2.UpdatedAt.Equal(clk.now) {
			t.Fatalf("rescheduled = %+v, %v; want version 2 starting %v", v2, err, moved.StartAt)
		}
		// The CM turns the number into a virtual room: a change of kind.
		room := booking("6800001", records.KindVirtual)
		if v3, err := db.PutBooking(ctx, room); err != nil || v3.Version != 3 || v3.Kind != records.KindVirtual || !v3.StartAt.IsZero() {
			t.Fatalf("made a virtual room = %+v, %v; want version 3 without times", v3, err)
		}

		gone, err := db.DeleteBooking(ctx, "6800001")
		if err != nil || gone.Kind != records.KindVirtual {
			t.Fatalf("DeleteBooking = %+v, %v", gone, err)
		}
		if _, err := db.DeleteBooking(ctx, "6800001"); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("repeated delete = %v, want ErrNotFound", err)
		}
		if _, err := db.Booking(ctx, "6800001"); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("Booking after delete = %v, want ErrNotFound", err)
		}
	})
}

func TestBookingRefusesWhatTheSchemaCannotHold(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		for _, c := range []struct {
			name string
			edit func(*records.Booking)
		}{
			{"no e164", func(b *records.Booking) { b.E164 = "" }},
			{"no domain", func(b *records.Booking) { b.Domain = "" }},
			{"no platform", func(b *records.Booking) { b.Platform = "" }},
			{"a running conference", func(b *records.Booking) { b.Kind = records.KindInstant }},
			{"an unknown kind", func(b *records.Booking) { b.Kind = 9 }},
			{"a schedule without an end", func(b *records.Booking) { b.EndAt = time.Time{} }},
			{"a schedule ending before it starts", func(b *records.Booking) { b.EndAt = start.Add(-time.Minute) }},
			{"a schedule without a start", func(b *records.Booking) { b.StartAt = time.Time{} }},
			{"a virtual room with times", func(b *records.Booking) { b.Kind = records.KindVirtual }},
		} {
			b := booking("6800001", records.KindReserve)
			c.edit(&b)
			if _, err := db.PutBooking(ctx, b); !errors.Is(err, records.ErrInvalid) {
				t.Errorf("put %s = %v, want ErrInvalid", c.name, err)
			}
		}
		if all, err := db.AllBookings(ctx, "p1"); err != nil || len(all) != 0 {
			t.Fatalf("refused bookings stored: %+v, %v", all, err)
		}
	})
}

// What a backup reports for a failed master (000 §7.2): the master's
// scheduled conferences, personal templates, virtual rooms and public
// templates, and nothing of another platform.
func TestDirectoryOfAPlatform(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		put := func(b records.Booking) {
			if _, err := db.PutBooking(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		put(booking("6800003", records.KindReserve))
		put(booking("6800001", records.KindVirtual))
		personal := booking("6800002", records.KindTemplate)
		personal.Domain = "globex"
		put(personal)
		elsewhere := booking("6900001", records.KindVirtual)
		elsewhere.Platform = "p2"
		put(elsewhere)
		if _, err := db.CreateTemplate(ctx, tpl("6600001")); err != nil {
			t.Fatal(err)
		}

		entries, err := db.Directory(ctx, "p1")
		if err != nil {
			t.Fatal(err)
		}
		want := []records.Entry{
			{E164: "6600001", Kind: records.KindTemplate, Domain: "acme", Platform: "p1", Name: "board"},
			{E164: "6800001", Kind: records.KindVirtual, Domain: "acme", Platform: "p1", Name: "weekly"},
			{E164: "6800002", Kind: records.KindTemplate, Domain: "globex", Platform: "p1", Name: "weekly"},
			{E164: "6800003", Kind: records.KindReserve, Domain: "acme", Platform: "p1", Name: "weekly"},
		}
		if !reflect.DeepEqual(entries, want) {
			t.Fatalf("Directory(p1) =\n%+v\nwant\n%+v", entries, want)
		}

		numbers := func(bs []records.Booking, err error) string {
			if err != nil {
				return err.Error()
			}
			var out []string
			for _, b := range bs {
				out = append(out, b.E164)
			}
			return strings.Join(out, ",")
		}
		if got := numbers(db.AllBookings(ctx, "p2")); got != "6900001" {
			t.Errorf("AllBookings(p2) = %q", got)
		}
		if got := numbers(db.BookingsOf(ctx, "acme")); got != "6800001,6800003,6900001" {
			t.Errorf("BookingsOf(acme) = %q", got)
		}
		if got := numbers(db.BookingsOf(ctx, "globex")); got != "6800002" {
			t.Errorf("BookingsOf(globex) = %q", got)
		}
	})
}
