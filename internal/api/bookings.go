package api

import (
	"net/http"
	"time"

	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
)

// Bookings (000 §7.3): the numbers a user domain booked ahead of any
// conference — scheduled conferences, personal templates, virtual rooms.
// The scheduler of the platform writes and reads them (it keeps them in
// the records database and reports them to the registry); the API asks
// it over the bus, as it does for templates.

// BookingRequest is the body of PUT /v1/domains/{moid}/bookings/{e164}:
// the whole booking, which replaces what the number held. Kind is
// "scheduled" (with Start and End), "template" (a personal template) or
// "virtual" (a virtual room).
type BookingRequest struct {
	Kind  string    `json:"kind"`
	Name  string    `json:"name"`
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
}

// Booking is a booked number.
type Booking struct {
	E164       string    `json:"e164"`
	Kind       string    `json:"kind"`
	Name       string    `json:"name"`
	Domain     string    `json:"domain"`
	Platform   string    `json:"platform"`
	Start      time.Time `json:"start,omitzero"`
	End        time.Time `json:"end,omitzero"`
	Version    int64     `json:"version"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	ModifiedAt time.Time `json:"modified_at,omitzero"`
}

// BookingList is a user domain's bookings, by number.
type BookingList struct {
	Bookings []Booking `json:"bookings"`
}

// bookingRoutes are the bookings' routes: under the user domain, so that a
// tenant reaches its own only.
func (s *Server) bookingRoutes() []httpkit.Route {
	return []httpkit.Route{
		{Pattern: "GET /v1/domains/{moid}/bookings", Scope: httpkit.ScopeDomain, Handler: httpkit.HandlerFunc(s.domainBookings)},
		{Pattern: "GET /v1/domains/{moid}/bookings/{e164}", Scope: httpkit.ScopeDomain, Handler: httpkit.HandlerFunc(s.getBooking)},
		{Pattern: "PUT /v1/domains/{moid}/bookings/{e164}", Scope: httpkit.ScopeDomain, Handler: httpkit.HandlerFunc(s.putBooking)},
		{Pattern: "DELETE /v1/domains/{moid}/bookings/{e164}", Scope: httpkit.ScopeDomain, Handler: httpkit.HandlerFunc(s.deleteBooking)},
	}
}

// bookingKinds are the kinds a booking may be, by their REST name.
var bookingKinds = map[string]int{
	"scheduled": protocol.EntryReserved,
	"template":  protocol.EntryTemplate,
	"virtual":   protocol.EntryVirtual,
}

func (s *Server) putBooking(w http.ResponseWriter, r *http.Request) *codes.Error {
	moid, e164, aerr := bookingPath(r)
	if aerr != nil {
		return aerr
	}
	var q BookingRequest
	if err := httpkit.Decode(r, &q); err != nil {
		return err
	}
	kind, ok := bookingKinds[q.Kind]
	if !ok {
		return httpkit.BadRequest("field \"kind\" must be \"scheduled\", \"template\" or \"virtual\", not %q", q.Kind)
	}
	b := protocol.Booking{E164: e164, Kind: kind, Name: q.Name, Domain: moid, StartTime: unixMs(q.Start), EndTime: unixMs(q.End)}
	got, aerr := s.bookingCall(r, protocol.CMPutBookingReq, b)
	if aerr != nil {
		return aerr
	}
	httpkit.WriteJSON(w, http.StatusOK, bookingView(&got))
	return nil
}

func (s *Server) getBooking(w http.ResponseWriter, r *http.Request) *codes.Error {
	moid, e164, aerr := bookingPath(r)
	if aerr != nil {
		return aerr
	}
	got, aerr := s.bookingCall(r, protocol.CMGetBookingReq, protocol.Booking{E164: e164, Domain: moid})
	if aerr != nil {
		return aerr
	}
	httpkit.WriteJSON(w, http.StatusOK, bookingView(&got))
	return nil
}

func (s *Server) deleteBooking(w http.ResponseWriter, r *http.Request) *codes.Error {
	moid, e164, aerr := bookingPath(r)
	if aerr != nil {
		return aerr
	}
	if _, aerr := s.bookingCall(r, protocol.CMDeleteBookingReq, protocol.Booking{E164: e164, Domain: moid}); aerr != nil {
		return aerr
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) domainBookings(w http.ResponseWriter, r *http.Request) *codes.Error {
	moid, aerr := httpkit.PathToken(r, "moid", "domain")
	if aerr != nil {
		return aerr
	}
	ctx, cancel := s.busCtx(r)
	defer cancel()
	subject := protocol.SubjectCMMAU(s.opts.Platform)
	var ack protocol.BookingListAck
	if err := s.callScheduler(ctx, subject, protocol.BookingListReq{Type: protocol.CMListBookingsReq, Domain: moid}, &ack); err != nil {
		return fromBus(err, scheduler, subject)
	}
	out := BookingList{Bookings: make([]Booking, 0, len(ack.Bookings))}
	for i := range ack.Bookings {
		out.Bookings = append(out.Bookings, bookingView(&ack.Bookings[i]))
	}
	httpkit.WriteJSON(w, http.StatusOK, out)
	return nil
}

// bookingCall sends a booking request to the platform's scheduler and
// returns the booking it acknowledged.
func (s *Server) bookingCall(r *http.Request, typ string, b protocol.Booking) (protocol.Booking, *codes.Error) {
	ctx, cancel := s.busCtx(r)
	defer cancel()
	subject := protocol.SubjectCMMAU(s.opts.Platform)
	var ack protocol.BookingAck
	if err := s.callScheduler(ctx, subject, protocol.BookingReq{Type: typ, Booking: b}, &ack); err != nil {
		return protocol.Booking{}, fromBus(err, scheduler, subject)
	}
	return ack.Booking, nil
}

func bookingPath(r *http.Request) (moid, e164 string, err *codes.Error) {
	if moid, err = httpkit.PathToken(r, "moid", "domain"); err != nil {
		return "", "", err
	}
	e164, err = httpkit.PathE164(r)
	return moid, e164, err
}

func bookingView(b *protocol.Booking) Booking {
	kind, ok := registryKinds[b.Kind]
	if !ok {
		kind = "unknown"
	}
	return Booking{
		E164: b.E164, Kind: kind, Name: b.Name, Domain: b.Domain, Platform: b.Platform,
		Start: msTime(b.StartTime), End: msTime(b.EndTime), Version: b.Version,
		CreatedAt: msTime(b.CreateTime), ModifiedAt: msTime(b.ModifyTime),
	}
}

func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
