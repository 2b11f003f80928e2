package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
)

// Relations of a platform to the local one, in the Platform view.
const (
	relationSelf   = "self"
	relationMaster = "master"
	relationBackup = "backup"
)

// drModes are the DR modes PUT /v1/platforms/{moid}/dr accepts.
var drModes = []string{protocol.DRAutomatic, protocol.DRManualOn, protocol.DRManualOff, protocol.DRClosed}

// listPlatformStates lists the configured platforms with the local
// platform monitor's account of the local one, its masters and its
// backups. Without an answer from the monitor (within pmsLookupTimeout)
// the list is the configuration's alone.
func (s *Server) listPlatformStates(w http.ResponseWriter, r *http.Request) *codes.Error {
	ctx, cancel := context.WithTimeout(r.Context(), pmsLookupTimeout)
	defer cancel()
	var (
		wg    sync.WaitGroup
		ntf   protocol.PlatformStateNtf
		err   error
		self  protocol.PlatformInfo
		selfE error
	)
	subject := protocol.SubjectPMS(s.opts.Platform)
	wg.Add(1)
	go func() {
		defer wg.Done()
		self, selfE = s.pmsSelf(ctx)
	}()
	err = s.bus.Call(ctx, subject, protocol.PlatformStateReqMsg{Type: protocol.PlatformStateRq, Platform: s.opts.Platform}, &ntf)
	wg.Wait()
	if err != nil {
		if !errors.Is(err, bus.ErrNoResponders) {
			s.log.Warn("the platform monitor did not answer; platforms show the configuration alone", "err", err)
		}
		httpkit.WriteJSON(w, http.StatusOK, apiclient.PlatformList{Platforms: s.platformViews(nil, nil)})
		return nil
	}
	var selfp *protocol.PlatformInfo
	if selfE == nil {
		selfp = &self
	}
	httpkit.WriteJSON(w, http.StatusOK, apiclient.PlatformList{Platforms: s.platformViews(&ntf, selfp)})
	return nil
}

// pmsSelf asks the local platform monitor for the local platform's
// configuration and state, which say since when it is in its state.
func (s *Server) pmsSelf(ctx context.Context) (protocol.PlatformInfo, error) {
	var cfg protocol.PlatformConfigNtf
	err := s.bus.Call(ctx, protocol.SubjectPMS(s.opts.Platform),
		protocol.PlatformStateReqMsg{Type: protocol.PlatformConfigRq, Platform: s.opts.Platform}, &cfg)
	return cfg.Platform, err
}

// failPlatform switches the local platform over by hand
// (PLATFORM_SET_REQ, state abnormal): its backups take its conferences.
// The body is optional: {"reason": "..."}.
func (s *Server) failPlatform(w http.ResponseWriter, r *http.Request) *codes.Error {
	if aerr := s.localPlatform(r, "over"); aerr != nil {
		return aerr
	}
	var req apiclient.FailPlatformRequest
	if aerr := httpkit.DecodeOptional(r, &req); aerr != nil {
		return aerr
	}
	if len(req.Reason) > maxReasonLen {
		return httpkit.BadRequest("field \"reason\" must be at most %d bytes, not %d", maxReasonLen, len(req.Reason))
	}
	return s.setPlatform(w, r, protocol.PlatformAbnormal, req.Reason)
}

// recoverPlatform switches the local platform back (PLATFORM_SET_REQ,
// state normal). It takes no body, or an empty object.
func (s *Server) recoverPlatform(w http.ResponseWriter, r *http.Request) *codes.Error {
	if aerr := s.localPlatform(r, "back"); aerr != nil {
		return aerr
	}
	var req struct{}
	if aerr := httpkit.DecodeOptional(r, &req); aerr != nil {
		return aerr
	}
	return s.setPlatform(w, r, protocol.PlatformNormal, "")
}

// localPlatform checks that the path names the local platform: a platform
// is switched over by its own monitor, through its own API.
func (s *Server) localPlatform(r *http.Request, way string) *codes.Error {
	moid, aerr := httpkit.PathToken(r, "moid", "platform")
	if aerr != nil {
		return aerr
	}
	if moid == s.opts.Platform {
		return nil
	}
	if _, ok := s.cfg.PlatformByMoid(moid); !ok {
		return codes.Errorf(codes.UnknownPlatform, "platform %q is not configured; this API serves platform %q", moid, s.opts.Platform)
	}
	return httpkit.BadRequest("this API serves platform %q: switch platform %s %s on its own API", s.opts.Platform, moid, way)
}

func (s *Server) setPlatform(w http.ResponseWriter, r *http.Request, state, reason string) *codes.Error {
	ctx, cancel := s.busCtx(r)
	defer cancel()
	subject := protocol.SubjectPMS(s.opts.Platform)
	var ack protocol.PlatformStateNtf
	if err := s.bus.Call(ctx, subject, protocol.PlatformSetReq{Type: protocol.PlatformSetRq, State: state, Reason: reason}, &ack); err != nil {
		return fromBus(err, pms, subject)
	}
	holder, _ := httpkit.Holder(r)
	s.log.Info("platform state set through the API", "state", state, "reason", reason, "by", holder)
	s.writePlatforms(w, r, &ack)
	return nil
}

// setPlatformDR sets the DR mode of one of the local platform's masters
// (PLATFORM_DR_SET_REQ). The body is {"mode": "..."}.
func (s *Server) setPlatformDR(w http.ResponseWriter, r *http.Request) *codes.Error {
	moid, aerr := httpkit.PathToken(r, "moid", "platform")
	if aerr != nil {
		return aerr
	}
	var req apiclient.DRModeRequest
	if aerr := httpkit.Decode(r, &req); aerr != nil {
		return aerr
	}
	if !slices.Contains(drModes, req.Mode) {
		return httpkit.BadRequest("field \"mode\" must be automatic, manual-on, manual-off or closed, not %s", httpkit.Echo(req.Mode))
	}
	ctx, cancel := s.busCtx(r)
	defer cancel()
	subject := protocol.SubjectPMS(s.opts.Platform)
	var ack protocol.PlatformStateNtf
	err := s.bus.Call(ctx, subject, protocol.PlatformDRSetReq{Type: protocol.PlatformDRSetRq, Platform: moid, Mode: req.Mode}, &ack)
	if err != nil {
		return fromBus(err, pms, subject)
	}
	holder, _ := httpkit.Holder(r)
	s.log.Info("DR mode set through the API", "target", moid, "drmode", req.Mode, "by", holder)
	s.writePlatforms(w, r, &ack)
	return nil
}

// writePlatforms answers with the platforms as the monitor's ACK shows
// them, with the local one's time of change asked for on the side.
func (s *Server) writePlatforms(w http.ResponseWriter, r *http.Request, ack *protocol.PlatformStateNtf) {
	ctx, cancel := context.WithTimeout(r.Context(), pmsLookupTimeout)
	defer cancel()
	var selfp *protocol.PlatformInfo
	if self, err := s.pmsSelf(ctx); err == nil {
		selfp = &self
	}
	httpkit.WriteJSON(w, http.StatusOK, apiclient.PlatformList{Platforms: s.platformViews(ack, selfp)})
}

// platformViews lists the configured platforms, in the configuration's
// order, with the monitor's account (ntf, and self for the local
// platform's time of change) when there is one, then the platforms only
// the monitor knows. Without an account a platform reads normal, as it
// did before there was a monitor, and its relation comes from the
// configuration.
func (s *Server) platformViews(ntf *protocol.PlatformStateNtf, self *protocol.PlatformInfo) []apiclient.Platform {
	local, _ := s.cfg.PlatformByMoid(s.opts.Platform)
	out := make([]apiclient.Platform, 0, len(s.cfg.Platforms))
	seen := make(map[string]bool, len(s.cfg.Platforms))
	for _, p := range s.cfg.Platforms {
		seen[p.Moid] = true
		v := apiclient.Platform{
			Moid: p.Moid, Name: p.Name, NumberSegment: p.NumberSegment,
			Rooms: make([]apiclient.PlatformRoom, 0, len(p.Rooms)), Backups: nonNil(p.Backups), Local: p.Moid == s.opts.Platform,
			State: protocol.PlatformNormal,
		}
		for _, rm := range p.Rooms {
			v.Rooms = append(v.Rooms, apiclient.PlatformRoom{Moid: rm.Moid, Name: rm.Name, Type: rm.Type})
		}
		switch {
		case v.Local:
			v.Relation = relationSelf
		case slices.Contains(p.Backups, s.opts.Platform):
			v.Relation = relationMaster
		case slices.Contains(local.Backups, p.Moid):
			v.Relation = relationBackup
		}
		if ntf != nil {
			s.addAccount(&v, ntf, self)
		}
		out = append(out, v)
	}
	if ntf == nil {
		return out
	}
	for _, list := range [][]protocol.PlatformInfo{ntf.Masters, ntf.Backups} {
		for _, pi := range list {
			if seen[pi.Platform] {
				continue
			}
			seen[pi.Platform] = true
			v := apiclient.Platform{Moid: pi.Platform, Name: pi.Name, NumberSegment: pi.NumberSegment, Rooms: []apiclient.PlatformRoom{}, Backups: []string{}}
			s.addAccount(&v, ntf, self)
			out = append(out, v)
		}
	}
	return out
}

// addAccount sets v's state from the monitor's account, if the monitor
// knows the platform. A platform that is both a master and a backup of the
// local one shows as a master, with its DR mode.
func (s *Server) addAccount(v *apiclient.Platform, ntf *protocol.PlatformStateNtf, self *protocol.PlatformInfo) {
	if v.Moid == ntf.Platform {
		v.Relation, v.State, v.Manual, v.Reason = relationSelf, ntf.State, ntf.Manual, ntf.Reason
		if self != nil && self.Platform == v.Moid {
			v.Since = msTime(self.SinceMs)
		}
		return
	}
	for _, l := range []struct {
		relation string
		list     []protocol.PlatformInfo
	}{{relationMaster, ntf.Masters}, {relationBackup, ntf.Backups}} {
		for _, pi := range l.list {
			if pi.Platform == v.Moid {
				v.Relation, v.State, v.Observed, v.DRMode = l.relation, pi.State, pi.Observed, pi.DRMode
				v.Reason, v.Since = pi.Reason, msTime(pi.SinceMs)
				return
			}
		}
	}
}
