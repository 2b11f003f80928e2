package scheduler

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
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
		var (
			old protocol.Template
			st  *store.Store
			err = store.ErrTemplateNotFound
		)
		for _, w := range s.dr.servedStores() {
			if old, err = w.st.Template(ctx, t.E164); err == nil {
				st = w.st
				break
			}
		}
		if st == nil {
			return t, storeError(t.E164, err)
		}
		if err := st.DeleteTemplate(ctx, t.E164); err != nil {
			return t, storeError(t.E164, err)
		}
		s.report(protocol.UPUConfDelNtf, protocol.RegistryEntry{E164: t.E164, Kind: protocol.EntryTemplate})
		return old, nil
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
	now := time.Now().UnixMilli()
	t.Platform = dom.Platform
	t.ModifyTime = now
	// The store decides, in one step, whether the number is free of
	// conferences and templates (a create never replaces a template) and
	// of the platform's segment; a modify keeps the creation time.
	var err error
	if op == protocol.CMModifyTemplateReq {
		t, err = st.UpdateTemplate(ctx, t)
	} else {
		t.CreateTime = now
		src, _ := s.cfg.PlatformByMoid(dom.Platform)
		t, err = st.CreateTemplate(ctx, t, store.Numbering{Platform: src.Moid, Segment: src.NumberSegment, Digits: src.E164Digits})
	}
	if err != nil {
		return t, storeError(t.E164, err)
	}
	s.report(protocol.UPUConfAddNtf, templateEntry(&t, s.opts.Platform))
	return t, nil
}

func (s *Scheduler) validateTemplate(t *protocol.Template) error {
	t.Name = strings.TrimSpace(t.Name)
	switch {
	case t.Name == "" || utf8.RuneCountInString(t.Name) > 128:
		return fail(protocol.ErrBadRequest, nil, "field \"name\" must be 1 to 128 characters")
	case !protocol.ValidToken(t.Domain):
		return fail(protocol.ErrBadRequest, nil, "field \"moid\" must name a user domain")
	case t.E164 != "" && !protocol.ValidE164(t.E164):
		return fail(protocol.ErrBadRequest, nil, "field \"e164\" must be 3 to 32 digits")
	case t.DurationMinutes < 1 || t.DurationMinutes > s.opts.MaxDurationMinutes:
		return fail(protocol.ErrBadRequest, nil, "field \"duration\" must be between 1 and %d minutes", s.opts.MaxDurationMinutes)
	case len(t.Password) > 32:
		return fail(protocol.ErrBadRequest, nil, "field \"password\" is longer than 32 characters")
	}
	if _, err := license.ClassOf(t.Scale, t.Resolution); err != nil {
		return fail(protocol.ErrBadRequest, err, "fields \"scale\" and \"resolution\": %v", err)
	}
	return nil
}
