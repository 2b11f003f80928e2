package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/protocol"
)

// The bookings' routes carry the domain and number of the path and the
// body's fields to the platform's scheduler, which decides, and show what
// it answers.
func TestBookingRoutes(t *testing.T) {
	h := newHarness(t)
	booked := map[string]protocol.Booking{}
	sched := h.fake(protocol.SubjectCMMAU(platform), func(m *bus.Msg) any {
		switch m.Type {
		case protocol.CMListBookingsReq:
			var out []protocol.Booking
			for _, b := range booked {
				out = append(out, b)
			}
			return protocol.BookingListAck{Type: protocol.MAUListBookingsAck, Bookings: out}
		case protocol.CMPutBookingReq, protocol.CMGetBookingReq, protocol.CMDeleteBookingReq:
		default:
			return nil
		}
		var req protocol.BookingReq
		if err := m.Decode(&req); err != nil {
			return nack(protocol.MAUPutBookingNack, codes.BadRequest, err.Error())
		}
		b, ok := booked[req.Booking.E164]
		switch m.Type {
		case protocol.CMPutBookingReq:
			b = req.Booking
			b.Platform, b.Version = platform, 1
			booked[b.E164] = b
			return protocol.BookingAck{Type: protocol.MAUPutBookingAck, Booking: b}
		case protocol.CMDeleteBookingReq:
			delete(booked, b.E164)
		}
		if !ok {
			return nack(protocol.MAUGetBookingNack, codes.BookingNotFound, "no booking has the number "+req.Booking.E164)
		}
		return protocol.BookingAck{Type: protocol.MAUGetBookingAck, Booking: b}
	})

	start := time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)
	status, body := h.do(http.MethodPut, "/v1/domains/acme/bookings/6600123",
		`{"kind":"scheduled","name":"review","start":"2030-01-02T10:00:00Z","end":"2030-01-02T11:00:00Z"}`)
	if status != http.StatusOK {
		t.Fatalf("put: %d %s", status, body)
	}
	got := decodeBody[Booking](t, body)
	if got.Kind != "scheduled" || got.Domain != "acme" || got.Platform != platform || !got.Start.Equal(start) || !got.End.Equal(start.Add(time.Hour)) {
		t.Fatalf("put answered %+v", got)
	}
	var req protocol.BookingReq
	sched.last(t, &req)
	if b := req.Booking; b.E164 != "6600123" || b.Domain != "acme" || b.Kind != protocol.EntryReserved || b.StartTime != start.UnixMilli() || b.EndTime != start.Add(time.Hour).UnixMilli() {
		t.Fatalf("the scheduler was asked %+v", b)
	}

	n := len(sched.received())
	status, body = h.do(http.MethodPut, "/v1/domains/acme/bookings/6600124", `{"kind":"conference","name":"x"}`)
	wantError(t, status, body, http.StatusBadRequest, codes.BadRequest, `"kind"`)
	if len(sched.received()) != n {
		t.Fatal("a booking of no known kind reached the scheduler")
	}

	if status, body = h.do(http.MethodGet, "/v1/domains/acme/bookings", ""); status != http.StatusOK {
		t.Fatalf("list: %d %s", status, body)
	}
	if l := decodeBody[BookingList](t, body); len(l.Bookings) != 1 || l.Bookings[0].E164 != "6600123" {
		t.Fatalf("list %+v", l)
	}
	if status, body = h.do(http.MethodDelete, "/v1/domains/acme/bookings/6600123", ""); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, body)
	}
	status, body = h.do(http.MethodGet, "/v1/domains/acme/bookings/6600123", "")
	wantError(t, status, body, http.StatusNotFound, codes.BookingNotFound, "6600123")
}
