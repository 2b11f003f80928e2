package scheduler

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/store"
)

// Public templates (000 §10). Without a records database a template lives
// in the store of its platform only. With one, the records database
// (TTemplateInfo) is where it lives durably and where the scheduler reads
// it; the store keeps a copy, which holds the number: the store's one
// script still decides, in one step, that a number belongs to one
// conference or one template.
//
// A write goes store first, then SQL, and each step is safe to repeat:
//
//   - create: the number is reserved in the store (the template's copy),
//     then the template is written to SQL. A retry finds its own copy (same
//     content) and writes SQL again, which finds its own row: done. When
//     the SQL write fails, the copy is settled at once (removed, or made
//     the SQL template's when SQL holds another); what cannot be settled
//     then is settled by settleTemplates, so no number stays reserved for
//     a template SQL does not hold.
//   - modify: SQL, then the copy.
//   - delete: SQL, then the copy; a copy left behind is removed by a retry
//     or by settleTemplates.
//
// settleTemplates, every templateSettleInterval while active, makes each
// copy of a served platform's store agree with SQL once the last write to
// it is older than templateGrace: a copy SQL does not hold is removed (the
// number is free again), a template SQL holds gets its copy back.

const (
	// recordsTimeout bounds one request to the records database.
	recordsTimeout = 10 * time.Second
	// templateGrace is how long a copy may disagree with SQL before it is
	// settled: longer than a write in flight (recordsTimeout) can take.
	templateGrace = 6 * recordsTimeout
	// templateSettleInterval is the period of settleTemplates.
	templateSettleInterval = time.Minute
)

// handleTemplate adds, modifies or deletes a public template (000 §10): in
// the store of the platform its domain belongs to, numbered in that
// platform's segment, and reported to the registry.
func (s *Scheduler) handleTemplate(ctx context.Context, m *bus.Msg) {
	var req protocol.TemplateReq
	ackType, nackType := templateReplyTypes(m.Type)
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(nackType, protocol.ErrBadRequest, err.Error())
		return
	}
	t, err := s.Template(ctx, m.Type, req.Template)
	s.m.op("template", err)
	if err != nil {
		respondErr(m, nackType, req.Template.E164, err)
		return
	}
	_ = m.Respond(protocol.TemplateAck{Type: ackType, Template: t})
}

func templateReplyTypes(req string) (ack, nack string) {
	switch req {
	case protocol.CMModifyTemplateReq:
		return protocol.MAUModifyTemplateAck, protocol.MAUModifyTemplateNak
	case protocol.CMDeleteTemplateReq:
		return protocol.MAUDeleteTemplateAck, protocol.MAUDeleteTemplateNak
	}
	return protocol.MAUCreateTemplateAck, protocol.MAUCreateTemplateNak
}

// Template applies a template request of type op.
func (s *Scheduler) Template(ctx context.Context, op string, t protocol.Template) (protocol.Template, error) {
	if op == protocol.CMDeleteTemplateReq {
		if s.records != nil {
			return s.deleteRecordedTemplate(ctx, t.E164)
		}
		return s.deleteStoredTemplate(ctx, t.E164)
	}
	if err := s.validateTemplate(&t); err != nil {
		return t, err
	}
	dom, ok := s.cfg.DomainByMoid(t.Domain)
	if !ok {
		return t, fail(protocol.ErrDomainNotFound, nil, "no user domain %q", t.Domain)
	}
	if !s.dr.serves(dom.Platform) {
		return t, fail(protocol.ErrPlatformNotServed, nil, "domain %q belongs to platform %q, not served here", t.Domain, dom.Platform)
	}
	st := s.dr.storeOf(dom.Platform)
	if st == nil {
		return t, fail(protocol.ErrPlatformNotServed, nil, "platform %q's store is not reachable from here", dom.Platform)
	}
	t.Platform = dom.Platform
	t.ModifyTime = time.Now().UnixMilli()
	var err error
	switch {
	case s.records == nil:
		t, err = s.putStoredTemplate(ctx, st, op, t)
	case op == protocol.CMModifyTemplateReq:
		t, err = s.modifyRecordedTemplate(ctx, st, t)
	default:
		t, err = s.createRecordedTemplate(ctx, st, t)
	}
	if err != nil {
		return t, err
	}
	s.report(protocol.UPUConfAddNtf, templateEntry(&t, s.opts.Platform))
	return t, nil
}

// putStoredTemplate creates or modifies a template kept in the store only.
func (s *Scheduler) putStoredTemplate(ctx context.Context, st *store.Store, op string, t protocol.Template) (protocol.Template, error) {
	// The store decides, in one step, whether the number is free of
	// conferences and templates (a create never replaces a template) and
	// of the platform's segment; a modify keeps the creation time.
	var err error
	if op == protocol.CMModifyTemplateReq {
		t, err = st.UpdateTemplate(ctx, t)
	} else {
		t.CreateTime = t.ModifyTime
		t, err = st.CreateTemplate(ctx, t, s.numbering(t.Platform))
	}
	if err != nil {
		return t, storeError(t.E164, err)
	}
	return t, nil
}

// deleteStoredTemplate removes a template kept in the store only.
func (s *Scheduler) deleteStoredTemplate(ctx context.Context, e164 string) (protocol.Template, error) {
	var (
		old protocol.Template
		st  *store.Store
		err = store.ErrTemplateNotFound
	)
	for _, w := range s.dr.servedStores() {
		if old, err = w.st.Template(ctx, e164); err == nil {
			st = w.st
			break
		}
	}
	if st == nil {
		return protocol.Template{E164: e164}, storeError(e164, err)
	}
	if err := st.DeleteTemplate(ctx, e164); err != nil {
		return protocol.Template{E164: e164}, storeError(e164, err)
	}
	s.report(protocol.UPUConfDelNtf, protocol.RegistryEntry{E164: e164, Kind: protocol.EntryTemplate})
	return old, nil
}

// createRecordedTemplate reserves the number in the store, then writes the
// template to SQL.
func (s *Scheduler) createRecordedTemplate(ctx context.Context, st *store.Store, t protocol.Template) (protocol.Template, error) {
	recs := s.recordsOf(t.Platform)
	t.CreateTime = t.ModifyTime
	copied, err := st.CreateTemplate(ctx, t, s.numbering(t.Platform))
	if errors.Is(err, store.ErrE164InUse) && t.E164 != "" {
		// A retry finds the copy its first attempt made.
		if cur, rerr := st.Template(ctx, t.E164); rerr == nil && sameTemplate(cur, t) {
			copied, err = cur, nil
		}
	}
	if err != nil {
		return t, storeError(t.E164, err)
	}
	wctx, cancel := context.WithTimeout(ctx, recordsTimeout)
	rec, err := recs.CreateTemplate(wctx, templateRecord(copied))
	cancel()
	if err != nil {
		s.settleTemplate(ctx, st, recs, copied.E164)
		return t, recordsError(copied.E164, "template", err)
	}
	return templateOfRecord(rec), nil
}

// modifyRecordedTemplate changes a template in SQL, then its copy.
func (s *Scheduler) modifyRecordedTemplate(ctx context.Context, st *store.Store, t protocol.Template) (protocol.Template, error) {
	recs := s.recordsOf(t.Platform)
	cur, err := recs.Template(ctx, t.E164)
	if err != nil {
		return t, recordsError(t.E164, "template", err)
	}
	if cur.Platform != t.Platform {
		return t, fail(protocol.ErrBadRequest, nil, "template %s belongs to platform %q and domain %q belongs to %q: a template stays on its platform; delete it and create it in the new domain", t.E164, cur.Platform, t.Domain, t.Platform)
	}
	t.CreateTime = cur.CreatedAt.UnixMilli()
	wctx, cancel := context.WithTimeout(ctx, recordsTimeout)
	rec, err := recs.UpdateTemplate(wctx, templateRecord(t), records.AnyVersion)
	cancel()
	if err != nil {
		return t, recordsError(t.E164, "template", err)
	}
	out := templateOfRecord(rec)
	if _, err := st.PutTemplate(ctx, out, store.Numbering{}); err != nil {
		return t, storeError(t.E164, err)
	}
	return out, nil
}

// deleteRecordedTemplate removes a template from SQL, then its copy. A
// copy without a template in SQL (what a delete whose second step failed
// leaves) is removed too.
func (s *Scheduler) deleteRecordedTemplate(ctx context.Context, e164 string) (protocol.Template, error) {
	for _, w := range s.dr.servedStores() {
		recs := s.recordsOf(w.platform)
		rec, err := recs.Template(ctx, e164)
		switch {
		case errors.Is(err, records.ErrNotFound):
			continue
		case err != nil:
			return protocol.Template{E164: e164}, recordsError(e164, "template", err)
		case rec.Platform != w.platform:
			continue // another platform's, in a records database they share
		}
		wctx, cancel := context.WithTimeout(ctx, recordsTimeout)
		_, err = recs.DeleteTemplate(wctx, e164)
		cancel()
		if err != nil && !errors.Is(err, records.ErrNotFound) {
			return protocol.Template{E164: e164}, recordsError(e164, "template", err)
		}
		if err := w.st.DeleteTemplate(ctx, e164); err != nil && !errors.Is(err, store.ErrTemplateNotFound) {
			return protocol.Template{E164: e164}, storeError(e164, err)
		}
		s.report(protocol.UPUConfDelNtf, protocol.RegistryEntry{E164: e164, Kind: protocol.EntryTemplate})
		return templateOfRecord(rec), nil
	}
	// No template in SQL: a copy left behind is removed.
	return s.deleteStoredTemplate(ctx, e164)
}

// settleTemplate makes the store's copy of template e164 agree with SQL:
// the SQL template's content, or no copy (the number free) when SQL has
// none. Unless SQL answers, nothing changes.
func (s *Scheduler) settleTemplate(ctx context.Context, st *store.Store, recs TemplateRecords, e164 string) {
	rec, err := recs.Template(ctx, e164)
	switch {
	case errors.Is(err, records.ErrNotFound):
		err = st.DeleteTemplate(ctx, e164)
		if errors.Is(err, store.ErrTemplateNotFound) {
			err = nil
		}
		if err == nil {
			s.log.Info("template number freed: no template in the records database", "e164", e164)
		}
	case err == nil:
		_, err = st.PutTemplate(ctx, templateOfRecord(rec), store.Numbering{})
	}
	if err != nil {
		s.log.Warn("template copy not settled; the next pass retries", "e164", e164, "err", err)
	}
}

// settleTemplates settles the copies of the served platforms' templates
// that disagree with SQL and were last written more than templateGrace
// ago.
func (s *Scheduler) settleTemplates(ctx context.Context) {
	s.settleTemplatesBefore(ctx, time.Now().Add(-templateGrace))
}

// settleTemplatesBefore settles the copies that disagree with SQL and
// were last written before old.
func (s *Scheduler) settleTemplatesBefore(ctx context.Context, old time.Time) {
	if s.records == nil || s.dead.Load() {
		return
	}
	for _, w := range s.dr.servedStores() {
		recs := s.recordsOf(w.platform)
		rows, err := recs.AllTemplates(ctx, w.platform)
		if err != nil {
			s.log.Warn("templates not settled: the records database did not answer", "platform", w.platform, "err", err)
			continue
		}
		copies := map[string]protocol.Template{}
		for _, d := range s.cfg.Domains {
			if d.Platform != w.platform {
				continue
			}
			ts, err := w.st.DomainTemplates(ctx, d.Moid, false)
			if err != nil {
				s.log.Warn("templates not settled: the store did not answer", "platform", w.platform, "err", err)
				return
			}
			for _, t := range ts {
				copies[t.E164] = t
			}
		}
		for _, rec := range rows {
			c, ok := copies[rec.E164]
			delete(copies, rec.E164)
			if (!ok || !sameTemplate(c, templateOfRecord(rec))) && rec.UpdatedAt.Before(old) {
				s.settleTemplate(ctx, w.st, recs, rec.E164)
			}
		}
		for e164, c := range copies {
			if time.UnixMilli(c.ModifyTime).Before(old) {
				s.settleTemplate(ctx, w.st, recs, e164)
			}
		}
	}
}

// numbering is the numbers a platform's templates take.
func (s *Scheduler) numbering(platform string) store.Numbering {
	p, _ := s.cfg.PlatformByMoid(platform)
	return store.Numbering{Platform: p.Moid, Segment: p.NumberSegment, Digits: p.E164Digits}
}

// sameTemplate reports whether two templates say the same, times aside.
func sameTemplate(a, b protocol.Template) bool {
	return a.E164 == b.E164 && a.Domain == b.Domain && a.Platform == b.Platform && a.Name == b.Name &&
		a.Scale == b.Scale && a.Resolution == b.Resolution && a.DurationMinutes == b.DurationMinutes &&
		a.Public == b.Public && a.Password == b.Password && slices.Equal(a.Invited, b.Invited)
}

func templateRecord(t protocol.Template) records.Template {
	r := records.Template{
		E164: t.E164, Domain: t.Domain, Platform: t.Platform, Name: t.Name, Scale: t.Scale,
		Resolution: t.Resolution, DurationMinutes: t.DurationMinutes, Password: t.Password,
		Public: t.Public, Invited: t.Invited,
	}
	if t.CreateTime > 0 {
		r.CreatedAt = time.UnixMilli(t.CreateTime)
	}
	return r
}

func templateOfRecord(r records.Template) protocol.Template {
	return protocol.Template{
		E164: r.E164, Name: r.Name, Domain: r.Domain, Platform: r.Platform, Scale: r.Scale,
		Resolution: r.Resolution, DurationMinutes: r.DurationMinutes, Public: r.Public,
		Invited: r.Invited, Password: r.Password,
		CreateTime: r.CreatedAt.UnixMilli(), ModifyTime: r.UpdatedAt.UnixMilli(),
	}
}

// recordsError is the refusal of a records database error about the
// template or booking e164.
func recordsError(e164, what string, err error) *Error {
	switch {
	case errors.Is(err, records.ErrNotFound) && what == "template":
		return fail(protocol.ErrTemplateNotFound, err, "no template has the number %s", e164)
	case errors.Is(err, records.ErrNotFound):
		return fail(codes.BookingNotFound, err, "no booking has the number %s", e164)
	case errors.Is(err, records.ErrExists):
		return fail(protocol.ErrE164InUse, err, "number %s holds another %s already: choose another number, or modify that one", e164, what)
	case errors.Is(err, records.ErrInvalid):
		return fail(protocol.ErrBadRequest, err, "%s %s: %s", what, e164, err.Error())
	}
	return fail(codes.RecordsUnavailable, err, "the records database did not take %s %s: retry, the request is safe to repeat", what, e164)
}
