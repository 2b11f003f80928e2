package api

import (
	"net/http"

	"github.com/convene/convene/internal/protocol"
)

// Templates are written by the scheduler (it numbers them from the
// platform's segment) and read from the store.

func (s *Server) createTemplate(w http.ResponseWriter, r *http.Request) *apiError {
	var q TemplateRequest
	if err := decode(r, &q); err != nil {
		return err
	}
	if err := q.check(s.opts.MaxDurationMinutes); err != nil {
		return err
	}
	if err := ownDomain(r, q.Domain); err != nil {
		return err
	}
	t, aerr := s.templateCall(r, protocol.CMCreateTemplateReq, q.template())
	if aerr != nil {
		return aerr
	}
	w.Header().Set("Location", "/v1/templates/"+t.E164)
	writeJSON(w, http.StatusCreated, templateView(&t))
	return nil
}

func (s *Server) updateTemplate(w http.ResponseWriter, r *http.Request) *apiError {
	e164, aerr := pathE164(r)
	if aerr != nil {
		return aerr
	}
	var q TemplateRequest
	if err := decode(r, &q); err != nil {
		return err
	}
	if q.E164 != "" && q.E164 != e164 {
		return badRequest("field \"e164\" must be left out or match the path (%s)", e164)
	}
	q.E164 = e164
	if err := q.check(s.opts.MaxDurationMinutes); err != nil {
		return err
	}
	// The path's template is the token's (ScopeTemplate); the domain it
	// moves to must be too.
	if err := ownDomain(r, q.Domain); err != nil {
		return err
	}
	t, aerr := s.templateCall(r, protocol.CMModifyTemplateReq, q.template())
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, templateView(&t))
	return nil
}

func (s *Server) deleteTemplate(w http.ResponseWriter, r *http.Request) *apiError {
	e164, aerr := pathE164(r)
	if aerr != nil {
		return aerr
	}
	if _, aerr := s.templateCall(r, protocol.CMDeleteTemplateReq, protocol.Template{E164: e164}); aerr != nil {
		return aerr
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// templateCall sends a template request to the platform's scheduler and
// returns the template it acknowledged.
func (s *Server) templateCall(r *http.Request, typ string, t protocol.Template) (protocol.Template, *apiError) {
	ctx, cancel := s.busCtx(r)
	defer cancel()
	subject := protocol.SubjectCMMAU(s.opts.Platform)
	var ack protocol.TemplateAck
	if err := s.bus.Call(ctx, subject, protocol.TemplateReq{Type: typ, Template: t}, &ack); err != nil {
		return protocol.Template{}, fromBus(err, scheduler, subject)
	}
	return ack.Template, nil
}

func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request) *apiError {
	e164, aerr := pathE164(r)
	if aerr != nil {
		return aerr
	}
	t, err := s.store.Template(r.Context(), e164)
	if err != nil {
		return fromStore(err, e164)
	}
	writeJSON(w, http.StatusOK, templateView(&t))
	return nil
}

func (s *Server) domainTemplates(w http.ResponseWriter, r *http.Request) *apiError {
	moid, aerr := pathMoid(r)
	if aerr != nil {
		return aerr
	}
	publicOnly, aerr := queryBool(r, "public_only")
	if aerr != nil {
		return aerr
	}
	ts, err := s.domainStore(moid).DomainTemplates(r.Context(), moid, publicOnly)
	if err != nil {
		return fromStore(err, moid)
	}
	if len(ts) == 0 {
		if aerr := s.domainExists(r.Context(), moid); aerr != nil {
			return aerr
		}
	}
	out := templateList{Templates: make([]Template, 0, len(ts))}
	for i := range ts {
		out.Templates = append(out.Templates, templateView(&ts[i]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (q *TemplateRequest) template() protocol.Template {
	return protocol.Template{
		E164: q.E164, Name: q.Name, Domain: q.Domain, Scale: q.Scale, Resolution: q.Resolution,
		DurationMinutes: q.DurationMinutes, Public: q.Public, Invited: q.Invited, Password: q.Password,
	}
}
