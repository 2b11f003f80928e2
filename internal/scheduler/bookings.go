package scheduler

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/store"
)

// Bookings (000 §7): the numbers the CM booked ahead of any conference —
// scheduled conferences, personal templates, virtual rooms — live in the
// records database. The scheduler writes them for the CM and reports
// them, with the public templates, to its registry: its own platform's
// when it becomes active (after the lease) and when it serves again, a
// failed master's when it takes the master over (source domain and
// platform the master's, real platform this one); when the master
// recovers it makes its registry forget them, and when its own platform is
// switched over it makes its own registry forget its own (000 §7.2).

// TemplateRecords is where public templates live durably (records.DB).
type TemplateRecords interface {
	CreateTemplate(ctx context.Context, t records.Template) (records.Template, error)
	UpdateTemplate(ctx context.Context, t records.Template, expect int64) (records.Template, error)
	DeleteTemplate(ctx context.Context, e164 string) (records.Template, error)
	Template(ctx context.Context, e164 string) (records.Template, error)
	AllTemplates(ctx context.Context, platform string) ([]records.Template, error)
}

// BookingRecords is where booked numbers live (records.DB).
type BookingRecords interface {
	PutBooking(ctx context.Context, b records.Booking) (records.Booking, error)
	DeleteBooking(ctx context.Context, e164 string) (records.Booking, error)
	Booking(ctx context.Context, e164 string) (records.Booking, error)
	BookingsOf(ctx context.Context, moid string) ([]records.Booking, error)
	// Directory lists a source platform's bookings and public templates.
	Directory(ctx context.Context, platform string) ([]records.Entry, error)
}

// Records is what the scheduler keeps in the records database: public
// templates and bookings. *records.DB is one.
type Records interface {
	TemplateRecords
	BookingRecords
}

// recordsOrNil is r, or nil for a nil *records.DB: no records database.
func recordsOrNil(r Records) Records {
	if db, ok := r.(*records.DB); ok && db == nil {
		return nil
	}
	return r
}

// recordsOf is the records database of a possible-service platform: the
// master's own when its connection has one (Peer.Records), else this
// scheduler's, which then holds every platform's it serves (the rows say
// their platform).
func (s *Scheduler) recordsOf(platform string) Records {
	if platform != s.opts.Platform {
		if r := s.dr.recordsOf(platform); r != nil {
			return r
		}
	}
	return s.records
}

// recordsOf is a master's records database, when its connection has one.
func (p *peers) recordsOf(platform string) Records {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns[platform].Records
}

// startRecords reports this platform's directory to its registry once the
// term began, and settles template copies while the term lasts.
func (s *Scheduler) startRecords(t *term) {
	if s.records == nil {
		return
	}
	t.life.Go(func() {
		if !s.dr.ownDown() && s.lease.held() {
			n := s.reportDirectoryOf(t.ctx, s.opts.Platform)
			s.log.Info("bookings and templates reported to the registry", "entries", n)
		}
	})
	s.every(t, templateSettleInterval, s.settleTemplates)
}

// reportDirectoryOf reports a platform's bookings and public templates to
// this platform's registry, and says how many. Without a records
// database, the templates of its store.
func (s *Scheduler) reportDirectoryOf(ctx context.Context, platform string) int {
	if s.records == nil {
		st := s.dr.storeOf(platform)
		if st == nil {
			return 0
		}
		return s.reportTemplatesOf(ctx, platform, st, protocol.UPUConfAddNtf)
	}
	entries, err := s.recordsOf(platform).Directory(ctx, platform)
	if err != nil {
		s.log.Warn("bookings not reported: the records database did not answer; the registry's next resync reports them", "platform", platform, "err", err)
		return 0
	}
	for _, e := range entries {
		s.report(protocol.UPUConfAddNtf, protocol.RegistryEntry{
			E164: e.E164, Kind: int(e.Kind), Name: e.Name, Domain: e.Domain, Platform: e.Platform, RealPlatform: s.opts.Platform,
		})
	}
	return len(entries)
}

// forgetDirectoryOf makes this platform's registry forget the bookings and
// templates it reported of platform; the conferences running here stay
// until they end. Without a records database, the templates of the
// platform's store are deleted one by one.
func (s *Scheduler) forgetDirectoryOf(ctx context.Context, platform string) {
	if s.records == nil {
		if st := s.dr.storeOf(platform); st != nil {
			s.reportTemplatesOf(ctx, platform, st, protocol.UPUConfDelNtf)
		}
		return
	}
	ntf := protocol.RegistryClearNtf{Type: protocol.UPUClearBookingsNtf, Reporter: s.opts.Platform, Platform: platform}
	if err := s.bus.Publish(protocol.SubjectRegistry(s.opts.Platform), ntf); err != nil {
		s.log.Warn("could not tell the registry to forget a platform's bookings", "platform", platform, "err", err)
	}
}

// reportTemplatesOf adds (or, with UPU_CONF_DEL_NTF, removes) the
// templates of a platform's store to this platform's registry (000 §7.2).
func (s *Scheduler) reportTemplatesOf(ctx context.Context, platform string, st *store.Store, typ string) int {
	n := 0
	for _, d := range s.cfg.Domains {
		if d.Platform != platform {
			continue
		}
		tpls, err := st.DomainTemplates(ctx, d.Moid, false)
		if err != nil {
			continue
		}
		for i := range tpls {
			e := templateEntry(&tpls[i], s.opts.Platform)
			if typ == protocol.UPUConfDelNtf {
				e = protocol.RegistryEntry{E164: tpls[i].E164, Kind: protocol.EntryTemplate}
			}
			s.report(typ, e)
			n++
		}
	}
	return n
}

func (s *Scheduler) bookingRoutes(x *bus.Mux) {
	x.HandleFunc(protocol.CMPutBookingReq, s.handleBooking)
	x.HandleFunc(protocol.CMDeleteBookingReq, s.handleBooking)
	x.HandleFunc(protocol.CMGetBookingReq, s.handleBooking)
	x.HandleFunc(protocol.CMListBookingsReq, s.handleBookingList)
}

func (s *Scheduler) handleBooking(ctx context.Context, m *bus.Msg) {
	ack, nack := protocol.MAUPutBookingAck, protocol.MAUPutBookingNack
	switch m.Type {
	case protocol.CMDeleteBookingReq:
		ack, nack = protocol.MAUDeleteBookingAck, protocol.MAUDeleteBookingNack
	case protocol.CMGetBookingReq:
		ack, nack = protocol.MAUGetBookingAck, protocol.MAUGetBookingNack
	}
	var req protocol.BookingReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(nack, protocol.ErrBadRequest, err.Error())
		return
	}
	var (
		b   protocol.Booking
		err error
	)
	switch m.Type {
	case protocol.CMDeleteBookingReq:
		b, err = s.DeleteBooking(ctx, req.Booking.E164, req.Booking.Domain)
		s.m.op("booking", err)
	case protocol.CMGetBookingReq:
		b, err = s.Booking(ctx, req.Booking.E164, req.Booking.Domain)
	default:
		b, err = s.PutBooking(ctx, req.Booking)
		s.m.op("booking", err)
	}
	if err != nil {
		respondErr(m, nack, req.Booking.E164, err)
		return
	}
	_ = m.Respond(protocol.BookingAck{Type: ack, Booking: b})
}

func (s *Scheduler) handleBookingList(ctx context.Context, m *bus.Msg) {
	var req protocol.BookingListReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(protocol.MAUListBookingsNak, protocol.ErrBadRequest, err.Error())
		return
	}
	bs, err := s.Bookings(ctx, req.Domain)
	if err != nil {
		respondErr(m, protocol.MAUListBookingsNak, "", err)
		return
	}
	_ = m.Respond(protocol.BookingListAck{Type: protocol.MAUListBookingsAck, Bookings: bs})
}

// PutBooking creates or replaces the booking of b.E164 in the records
// database of its domain's platform and reports it to the registry.
// Repeated, it changes nothing and reports it again.
func (s *Scheduler) PutBooking(ctx context.Context, b protocol.Booking) (protocol.Booking, error) {
	if err := s.validateBooking(&b); err != nil {
		return b, err
	}
	recs, err := s.bookingRecords(b.Domain, true)
	if err != nil {
		return b, err
	}
	dom, _ := s.cfg.DomainByMoid(b.Domain)
	b.Platform = dom.Platform
	if err := s.checkSegment(b.E164, b.Platform); err != nil {
		return b, err
	}
	wctx, cancel := context.WithTimeout(ctx, recordsTimeout)
	rec, err := recs.PutBooking(wctx, bookingRecord(b))
	cancel()
	if err != nil {
		return b, recordsError(b.E164, "booking", err)
	}
	out := bookingOfRecord(rec)
	s.report(protocol.UPUConfAddNtf, bookingEntry(out, s.opts.Platform))
	return out, nil
}

// DeleteBooking removes the booking of e164 (of domain moid, unless moid
// is empty) and reports it gone. A booking already gone is
// BOOKING_NOT_FOUND, which a retry may take as done.
func (s *Scheduler) DeleteBooking(ctx context.Context, e164, moid string) (protocol.Booking, error) {
	recs, b, err := s.findBooking(ctx, e164, moid)
	if err != nil {
		return protocol.Booking{E164: e164}, err
	}
	wctx, cancel := context.WithTimeout(ctx, recordsTimeout)
	_, err = recs.DeleteBooking(wctx, e164)
	cancel()
	if err != nil {
		return protocol.Booking{E164: e164}, recordsError(e164, "booking", err)
	}
	s.report(protocol.UPUConfDelNtf, protocol.RegistryEntry{E164: e164, Kind: b.Kind})
	return b, nil
}

// Booking reads the booking of e164 (of domain moid, unless moid is
// empty) of a served platform.
func (s *Scheduler) Booking(ctx context.Context, e164, moid string) (protocol.Booking, error) {
	_, b, err := s.findBooking(ctx, e164, moid)
	return b, err
}

// Bookings lists a user domain's bookings, by number.
func (s *Scheduler) Bookings(ctx context.Context, moid string) ([]protocol.Booking, error) {
	if !protocol.ValidToken(moid) {
		return nil, fail(protocol.ErrBadRequest, nil, "field \"moid\" must name a user domain")
	}
	recs, err := s.bookingRecords(moid, false)
	if err != nil {
		return nil, err
	}
	rows, err := recs.BookingsOf(ctx, moid)
	if err != nil {
		return nil, recordsError("", "booking", err)
	}
	out := make([]protocol.Booking, 0, len(rows))
	for _, r := range rows {
		out = append(out, bookingOfRecord(r))
	}
	return out, nil
}

// bookingRecords is the records database of a user domain's platform; a
// write needs the platform served here.
func (s *Scheduler) bookingRecords(moid string, write bool) (Records, error) {
	dom, ok := s.cfg.DomainByMoid(moid)
	switch {
	case !ok:
		return nil, fail(protocol.ErrDomainNotFound, nil, "no user domain %q", moid)
	case write && dom.Disabled:
		return nil, fail(protocol.ErrDomainDisabled, nil, "user domain %q is disabled and books nothing: enable it in the topology first", moid)
	case write && !s.dr.serves(dom.Platform):
		return nil, fail(protocol.ErrPlatformNotServed, nil, "domain %q belongs to platform %q, not served here", moid, dom.Platform)
	}
	recs := s.recordsOf(dom.Platform)
	if recs == nil {
		return nil, noRecords()
	}
	return recs, nil
}

// findBooking finds the booking of e164 among the served platforms'.
func (s *Scheduler) findBooking(ctx context.Context, e164, moid string) (Records, protocol.Booking, error) {
	if !protocol.ValidE164(e164) {
		return nil, protocol.Booking{}, fail(protocol.ErrBadRequest, nil, "field \"e164\" must be 3 to 32 digits")
	}
	if s.records == nil {
		return nil, protocol.Booking{}, noRecords()
	}
	for _, w := range s.dr.servedStores() {
		recs := s.recordsOf(w.platform)
		rec, err := recs.Booking(ctx, e164)
		switch {
		case errors.Is(err, records.ErrNotFound):
			continue
		case err != nil:
			return nil, protocol.Booking{}, recordsError(e164, "booking", err)
		case rec.Platform != w.platform:
			continue // another platform's, in a records database they share
		case moid != "" && rec.Domain != moid:
			// Another domain's: as if there were none.
			return nil, protocol.Booking{}, fail(codes.BookingNotFound, nil, "no booking of domain %q has the number %s", moid, e164)
		}
		return recs, bookingOfRecord(rec), nil
	}
	return nil, protocol.Booking{}, fail(codes.BookingNotFound, nil, "no booking of a platform served here has the number %s", e164)
}

func noRecords() *Error {
	return fail(codes.RecordsUnavailable, nil, "this scheduler keeps no records database, where bookings live: give its host a records resource (records: in the host file, or --records)")
}

func (s *Scheduler) validateBooking(b *protocol.Booking) error {
	b.Name = strings.TrimSpace(b.Name)
	if err := protocol.CheckName("name", b.Name); err != nil {
		return fail(protocol.ErrBadRequest, nil, "%s", err.Error())
	}
	switch {
	case !protocol.ValidE164(b.E164):
		return fail(protocol.ErrBadRequest, nil, "field \"e164\" must be 3 to 32 digits")
	case !protocol.ValidToken(b.Domain):
		return fail(protocol.ErrBadRequest, nil, "field \"moid\" must name a user domain")
	case b.Kind == protocol.EntryReserved:
		if b.StartTime <= 0 || b.EndTime <= b.StartTime {
			return fail(protocol.ErrBadRequest, nil, "a scheduled conference needs \"starttime\" and an \"endtime\" after it")
		}
		if max := time.Duration(s.opts.MaxDurationMinutes) * time.Minute; time.Duration(b.EndTime-b.StartTime)*time.Millisecond > max {
			return fail(protocol.ErrDurationLimit, nil, "a scheduled conference lasts at most %d minutes: end it earlier", s.opts.MaxDurationMinutes)
		}
	case b.Kind == protocol.EntryTemplate || b.Kind == protocol.EntryVirtual:
		if b.StartTime != 0 || b.EndTime != 0 {
			return fail(protocol.ErrBadRequest, nil, "only a scheduled conference (kind %d) has \"starttime\" and \"endtime\"", protocol.EntryReserved)
		}
	default:
		return fail(protocol.ErrBadRequest, nil, "field \"kind\" must be %d (scheduled conference), %d (personal template) or %d (virtual room)",
			protocol.EntryReserved, protocol.EntryTemplate, protocol.EntryVirtual)
	}
	return nil
}

// checkSegment refuses a number outside its platform's segment, as the
// store does a conference's or a template's.
func (s *Scheduler) checkSegment(e164, platform string) error {
	n := s.numbering(platform)
	if n.Segment == "" || (strings.HasPrefix(e164, n.Segment) && (n.Digits == 0 || len(e164) == len(n.Segment)+n.Digits)) {
		return nil
	}
	return fail(protocol.ErrE164OutOfSegment, nil, "number %s is outside platform %q's number segment: book a number of %s followed by %d digits", e164, platform, n.Segment, n.Digits)
}

func bookingEntry(b protocol.Booking, real string) protocol.RegistryEntry {
	return protocol.RegistryEntry{E164: b.E164, Kind: b.Kind, Name: b.Name, Domain: b.Domain, Platform: b.Platform, RealPlatform: real}
}

func bookingRecord(b protocol.Booking) records.Booking {
	r := records.Booking{E164: b.E164, Kind: records.Kind(b.Kind), Domain: b.Domain, Platform: b.Platform, Name: b.Name}
	if b.Kind == protocol.EntryReserved {
		r.StartAt, r.EndAt = time.UnixMilli(b.StartTime), time.UnixMilli(b.EndTime)
	}
	return r
}

func bookingOfRecord(r records.Booking) protocol.Booking {
	b := protocol.Booking{
		E164: r.E164, Kind: int(r.Kind), Name: r.Name, Domain: r.Domain, Platform: r.Platform,
		CreateTime: r.CreatedAt.UnixMilli(), ModifyTime: r.UpdatedAt.UnixMilli(), Version: r.Version,
	}
	if !r.StartAt.IsZero() {
		b.StartTime, b.EndTime = r.StartAt.UnixMilli(), r.EndAt.UnixMilli()
	}
	return b
}
