package api

import (
	"net/http"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// Templates are written by the scheduler (it numbers them from the
// platform's segment) and read from the store.

func (s *Server) createTemplate(w http.ResponseWriter, r *http.Request) *codes.Error {
	var q apiclient.TemplateRequest
	if err := httpkit.Decode(r, &q); err != nil {
		return err
	}
	if err := checkTemplate(&q, s.opts.MaxDurationMinutes); err != nil {
		return err
	}
	if err := ownDomain(r, q.Domain); err != nil {
		return err
	}
	t, aerr := s.templateCall(r, protocol.CMCreateTemplateReq, templateOf(&q))
	if aerr != nil {
		return aerr
	}
	w.Header().Set("Location", "/v1/templates/"+t.E164)
	httpkit.WriteJSON(w, http.StatusCreated, templateView(&t))
	return nil
}

func (s *Server) updateTemplate(w http.ResponseWriter, r *http.Request) *codes.Error {
	e164, aerr := httpkit.PathE164(r)
	if aerr != nil {
		return aerr
	}
	var q apiclient.TemplateRequest
	if err := httpkit.Decode(r, &q); err != nil {
		return err
	}
	if q.E164 != "" && q.E164 != e164 {
		return httpkit.BadRequest("field \"e164\" must be left out or match the path (%s)", e164)
	}
	q.E164 = e164
	if err := checkTemplate(&q, s.opts.MaxDurationMinutes); err != nil {
		return err
	}
	// The path's template is the token's (ScopeTemplate); the domain it
	// moves to must be too.
	if err := ownDomain(r, q.Domain); err != nil {
		return err
	}
	t, aerr := s.templateCall(r, protocol.CMModifyTemplateReq, templateOf(&q))
	if aerr != nil {
		return aerr
	}
	httpkit.WriteJSON(w, http.StatusOK, templateView(&t))
	return nil
}

func (s *Server) deleteTemplate(w http.ResponseWriter, r *http.Request) *codes.Error {
	e164, aerr := httpkit.PathE164(r)
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
func (s *Server) templateCall(r *http.Request, typ string, t protocol.Template) (protocol.Template, *codes.Error) {
	ctx, cancel := s.busCtx(r)
	defer cancel()
	subject := protocol.SubjectCMMAU(s.opts.Platform)
	var ack protocol.TemplateAck
	if err := s.callScheduler(ctx, subject, protocol.TemplateReq{Type: typ, Template: t}, &ack); err != nil {
		return protocol.Template{}, fromBus(err, scheduler, subject)
	}
	return ack.Template, nil
}

func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request) *codes.Error {
	e164, aerr := httpkit.PathE164(r)
	if aerr != nil {
		return aerr
	}
	t, err := s.store.Template(r.Context(), e164)
	if err != nil {
		return store.Refusal(err, e164, "")
	}
	httpkit.WriteJSON(w, http.StatusOK, templateView(&t))
	return nil
}

func (s *Server) domainTemplates(w http.ResponseWriter, r *http.Request) *codes.Error {
	moid, aerr := httpkit.PathToken(r, "moid", "domain")
	if aerr != nil {
		return aerr
	}
	publicOnly, aerr := httpkit.QueryBool(r, "public_only")
	if aerr != nil {
		return aerr
	}
	ts, err := s.domainStore(moid).DomainTemplates(r.Context(), moid, publicOnly)
	if err != nil {
		return store.Refusal(err, "", moid)
	}
	if len(ts) == 0 {
		if aerr := s.domainExists(r.Context(), moid); aerr != nil {
			return aerr
		}
	}
	out := apiclient.TemplateList{Templates: make([]apiclient.Template, 0, len(ts))}
	for i := range ts {
		out.Templates = append(out.Templates, templateView(&ts[i]))
	}
	httpkit.WriteJSON(w, http.StatusOK, out)
	return nil
}

func templateOf(q *apiclient.TemplateRequest) protocol.Template {
	return protocol.Template{
		E164: q.E164, Name: q.Name, Domain: q.Domain, Scale: q.Scale, Resolution: q.Resolution,
		DurationMinutes: q.DurationMinutes, Public: q.Public, Invited: q.Invited, Password: q.Password,
	}
}
