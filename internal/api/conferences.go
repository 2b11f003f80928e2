package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// createConference books a conference now: the scheduler checks the domain
// and licence, picks a node and answers when the node hosts it.
func (s *Server) createConference(w http.ResponseWriter, r *http.Request) *codes.Error {
	var q apiclient.CreateConferenceRequest
	if err := httpkit.Decode(r, &q); err != nil {
		return err
	}
	if err := checkCreate(&q, s.opts.MaxDurationMinutes); err != nil {
		return err
	}
	if err := ownDomain(r, q.Domain); err != nil {
		return err
	}
	req := protocol.CreateConfReq{
		Type: protocol.CMCreateConfReq, E164: q.E164, Name: q.Name, Domain: q.Domain,
		Scale: q.Scale, Resolution: q.Resolution, DurationMinutes: q.DurationMinutes,
		Password: q.Password, Public: q.Public, Invited: q.Invited, Recording: q.Recording,
	}
	ctx, cancel := s.busCtx(r)
	defer cancel()
	subject := protocol.SubjectCMMAU(s.opts.Platform)
	var ack protocol.CreateConfAck
	if err := s.callScheduler(ctx, subject, req, &ack); err != nil {
		return fromBus(err, scheduler, subject)
	}
	s.log.Debug("conference created", "e164", ack.Conf.E164, "domain", q.Domain, "node", ack.Conf.Node)
	s.announceCreated(&ack.Conf)
	w.Header().Set("Location", "/v1/conferences/"+ack.Conf.E164)
	httpkit.WriteJSON(w, http.StatusCreated, conferenceView(&ack.Conf))
	return nil
}

func (s *Server) getConference(w http.ResponseWriter, r *http.Request) *codes.Error {
	e164, aerr := httpkit.PathE164(r)
	if aerr != nil {
		return aerr
	}
	return s.writeConference(w, r.Context(), e164)
}

// writeConference reads a conference from the store and sends it.
func (s *Server) writeConference(w http.ResponseWriter, ctx context.Context, e164 string) *codes.Error {
	c, _, err := s.conferenceAnywhere(ctx, e164)
	if err != nil {
		return store.Refusal(err, e164, "")
	}
	httpkit.WriteJSON(w, http.StatusOK, conferenceView(&c))
	return nil
}

func (s *Server) endConference(w http.ResponseWriter, r *http.Request) *codes.Error {
	e164, aerr := httpkit.PathE164(r)
	if aerr != nil {
		return aerr
	}
	req := protocol.ConfReq{Type: protocol.CMReleaseConfReq, E164: e164}
	if err := s.confCall(r, e164, req, nil); err != nil {
		return err
	}
	s.log.Debug("conference ended", "e164", e164)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) delayConference(w http.ResponseWriter, r *http.Request) *codes.Error {
	e164, aerr := httpkit.PathE164(r)
	if aerr != nil {
		return aerr
	}
	var q apiclient.DelayRequest
	if err := httpkit.Decode(r, &q); err != nil {
		return err
	}
	// The limit on a conference's whole length is the store's to check,
	// against what is booked so far (DURATION_LIMIT): only the form here.
	if q.Minutes < 1 {
		return httpkit.BadRequest("field \"minutes\" is required: at least 1 minute (the whole conference may last at most %d)", s.opts.MaxDurationMinutes)
	}
	req := protocol.DelayConfReq{Type: protocol.CMDelayConfReq, E164: e164, Minutes: q.Minutes}
	var ack protocol.ConfDurationNtf
	if err := s.confCall(r, e164, req, &ack); err != nil {
		return err
	}
	return s.writeConference(w, r.Context(), e164)
}

// updateConference renames, then changes the password, then sends the
// conference as the store has it.
func (s *Server) updateConference(w http.ResponseWriter, r *http.Request) *codes.Error {
	e164, aerr := httpkit.PathE164(r)
	if aerr != nil {
		return aerr
	}
	var q apiclient.UpdateConferenceRequest
	if err := httpkit.Decode(r, &q); err != nil {
		return err
	}
	if err := checkUpdate(&q); err != nil {
		return err
	}
	if q.Name != nil {
		req := protocol.ModifyConfNameReq{Type: protocol.CMModifyConfNameReq, E164: e164, Name: *q.Name}
		if err := s.confCall(r, e164, req, nil); err != nil {
			return err
		}
	}
	if q.Password != nil {
		req := protocol.ModifyPasswordReq{Type: protocol.CMModifyPasswordReq, E164: e164, Password: *q.Password}
		if err := s.confCall(r, e164, req, nil); err != nil {
			return err
		}
	}
	return s.writeConference(w, r.Context(), e164)
}

// confCall sends a per-conference request to the scheduler running the
// conference, on its control subject; when nobody listens there it tries
// on the platform scheduler's own subject, waiting out a handover.
func (s *Server) confCall(r *http.Request, e164 string, req, ack any) *codes.Error {
	ctx, cancel := s.busCtx(r)
	defer cancel()
	subject := protocol.SubjectConfControl(e164)
	err := s.bus.Call(ctx, subject, req, ack)
	if errors.Is(err, bus.ErrNoResponders) {
		subject = protocol.SubjectCMMAU(s.opts.Platform)
		err = s.callScheduler(ctx, subject, req, ack)
	}
	if err != nil {
		return fromBus(err, scheduler, subject)
	}
	return nil
}
