package scheduler

import (
	"context"
	"errors"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// nodeRoutes registers what media nodes send the scheduler
// (mau.mcu.<platform>).
func (s *Scheduler) nodeRoutes(x *bus.Mux) {
	x.HandleFunc(protocol.MCUConfListNtf, s.handleConfList)
	x.HandleFunc(protocol.MCUConfStateChangeNtf, s.handleStateChange)
	x.HandleFunc(protocol.MCUReleaseConfNtf, s.handleNodeRelease)
	x.HandleFunc(protocol.MCUCMModifyConfNameReq, s.handleNodeRename)
	x.HandleFunc(protocol.MCUDelayConfReq, s.handleNodeDelay)
}

// handleStateChange records a name or password a node applied
// (MCU_MAU_CONFSTATECHANGE_NTF, 000 §5.1, §5.2).
func (s *Scheduler) handleStateChange(ctx context.Context, m *bus.Msg) {
	var ntf protocol.ConfStateChangeNtf
	if err := m.Decode(&ntf); err != nil {
		s.log.Warn("bad state change", "err", err)
		return
	}
	w, err := s.locate(ctx, ntf.E164)
	if err != nil {
		return
	}
	c, err := w.st.Conference(ctx, ntf.E164)
	if err != nil || c.Node != ntf.Node {
		s.log.Info("state change from a node that does not run the conference", "e164", ntf.E164, "node", ntf.Node)
		return
	}
	var kv []string
	if ntf.Name != nil && *ntf.Name != c.Name {
		kv = append(kv, "confname", *ntf.Name)
		s.reportName(&c, *ntf.Name)
	}
	if ntf.Password != nil && *ntf.Password != c.Password {
		kv = append(kv, "password", *ntf.Password)
	}
	if len(kv) == 0 {
		return
	}
	if err := w.st.Update(ctx, ntf.E164, kv...); err != nil {
		s.log.Warn("could not record a state change", "e164", ntf.E164, "err", err)
	}
}

// handleNodeRelease: a node ended a conference on its own. It ends in the
// store only if the store attributes it to that node; otherwise the notice
// is from a copy that was already replaced (000 §9.2) and is ignored.
func (s *Scheduler) handleNodeRelease(ctx context.Context, m *bus.Msg) {
	var ntf protocol.NodeReleaseNtf
	if err := m.Decode(&ntf); err != nil {
		s.log.Warn("bad release notice", "err", err)
		return
	}
	w, err := s.locate(ctx, ntf.E164)
	if err != nil {
		s.log.Debug("release notice for an unknown conference", "e164", ntf.E164, "node", ntf.Node)
		return
	}
	old, err := w.st.Release(ctx, ntf.E164, store.ReleaseCond{State: protocol.StateRunning, Node: ntf.Node})
	switch {
	case err == nil:
		s.ended(old, ReasonOnNode, false)
	case errors.Is(err, store.ErrConfNotFound), errors.Is(err, store.ErrNodeMismatch), errors.Is(err, store.ErrStateConflict):
		s.log.Debug("release notice ignored", "e164", ntf.E164, "node", ntf.Node, "why", err)
	default:
		s.log.Warn("could not record a node's release", "e164", ntf.E164, "err", err)
	}
}

// handleNodeRename relays a node's rename request to the CM for approval
// (MCU_CM_MODIFYCONFNAME_REQ goes to meeting.css, 000 §5.1).
func (s *Scheduler) handleNodeRename(_ context.Context, m *bus.Msg) {
	var req protocol.ModifyConfNameReq
	if err := m.Decode(&req); err != nil {
		s.log.Warn("bad rename request from node", "err", err)
		return
	}
	req.Type = protocol.MCUCMModifyConfNameReq
	platform := ""
	if w, err := s.locate(context.Background(), req.E164); err == nil {
		platform = w.platform
	}
	if err := s.dr.cmBus(platform).Publish(protocol.SubjectCMRequests, req); err != nil {
		s.log.Warn("could not relay a rename request to the CM", "e164", req.E164, "err", err)
	}
	s.m.op("rename-relay", nil)
}

// handleNodeDelay: a node asks for more time (MCU_MAU_DELAYCONF_REQ); the
// scheduler checks, records, answers the node and tells the CM.
func (s *Scheduler) handleNodeDelay(ctx context.Context, m *bus.Msg) {
	var req protocol.DelayConfReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(protocol.MAUMCUDelayConfNack, protocol.ErrBadRequest, err.Error())
		return
	}
	ntf, err := s.delay(ctx, req.E164, req.Minutes, false)
	s.m.op("node-delay", err)
	if err != nil {
		respondErr(m, protocol.MAUMCUDelayConfNack, req.E164, err)
		return
	}
	ntf.Type = protocol.MAUMCUDelayConfAck
	_ = m.Respond(ntf)
}
