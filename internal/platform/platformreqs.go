package platform

import (
	"context"
	"errors"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// The platform requests on monitor.req.<platform>: PLATFORM_STATE_REQ,
// PLATFORM_CONFIG_REQ, PLATFORM_SET_REQ and PLATFORM_DR_SET_REQ.

// handlePlatformState answers with the whole view, whoever asks: this
// platform's scheduler at its start (000 §2.2), or a backup's PMS polling.
func (s *Service) handlePlatformState(_ context.Context, m *bus.Msg) {
	if err := m.Respond(s.platformNotice(protocol.PlatformStateNotify)); err != nil {
		s.log.Warn("pms could not answer a platform state request", "err", err)
	}
}

// handlePlatformConfig answers with one platform's configuration and
// state; no moid is this platform.
func (s *Service) handlePlatformConfig(_ context.Context, m *bus.Msg) {
	var req protocol.PlatformStateReqMsg
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(PlatformConfigNack, protocol.ErrBadRequest, "PLATFORM_CONFIG_REQ is not a valid message: "+err.Error())
		return
	}
	info, err := s.PlatformConfig(req.Platform)
	if err != nil {
		_ = m.Nack(PlatformConfigNack, nackCode(err), err.Error())
		return
	}
	if err := m.Respond(protocol.PlatformConfigNtf{Type: protocol.PlatformConfigNotify, Platform: info}); err != nil {
		s.log.Warn("pms could not answer a platform config request", "target", req.Platform, "err", err)
	}
}

// handlePlatformSet switches the platform over or back, and answers once
// the change is broadcast.
func (s *Service) handlePlatformSet(_ context.Context, m *bus.Msg) {
	var req protocol.PlatformSetReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(protocol.PlatformSetNack, protocol.ErrBadRequest, "PLATFORM_SET_REQ is not a valid message: "+err.Error())
		return
	}
	if err := s.SetOwnState(req.State, req.Reason); err != nil {
		s.log.Warn("pms refused a platform state change", "state", req.State, "err", err)
		_ = m.Nack(protocol.PlatformSetNack, nackCode(err), err.Error())
		return
	}
	if err := m.Respond(s.platformNotice(protocol.PlatformSetAck)); err != nil {
		s.log.Warn("pms could not answer a platform state change", "state", req.State, "err", err)
	}
}

// handleDRSet sets a master's DR mode, and answers once the change is
// broadcast.
func (s *Service) handleDRSet(_ context.Context, m *bus.Msg) {
	var req protocol.PlatformDRSetReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(protocol.PlatformDRSetNack, protocol.ErrBadRequest, "PLATFORM_DR_SET_REQ is not a valid message: "+err.Error())
		return
	}
	if err := s.SetDRMode(req.Platform, req.Mode); err != nil {
		s.log.Warn("pms refused a DR mode change", "target", req.Platform, "drmode", req.Mode, "err", err)
		_ = m.Nack(protocol.PlatformDRSetNack, nackCode(err), err.Error())
		return
	}
	if err := m.Respond(s.platformNotice(protocol.PlatformDRSetAck)); err != nil {
		s.log.Warn("pms could not answer a DR mode change", "target", req.Platform, "err", err)
	}
}

func nackCode(err error) string {
	if errors.Is(err, ErrUnknownPlatform) {
		return CodeUnknownPlatform
	}
	return protocol.ErrBadRequest
}
