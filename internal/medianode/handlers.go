package medianode

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// Reasons a node gives in MCU_MAU_RELEASECONF_NTF.
const (
	ReasonReleased    = "released"      // the scheduler told it to
	ReasonEndedOnNode = "ended-on-node" // its chair ended it (End)
)

// hostReq is the part of MAU_MCU_CREATECONF_REQ and MAU_MCU_RESTORECONF_REQ
// a node keeps; decoding only this keeps the create path cheap. The tags
// are protocol.Conference's.
type hostReq struct {
	Conf struct {
		E164     string `json:"e164"`
		Name     string `json:"confname"`
		Password string `json:"password"`
		EndTime  int64  `json:"endtime"`
		Duration int    `json:"duration"`
	} `json:"conf"`
}

// newMux routes the scheduler's messages to the session's handlers.
func (s *session) newMux() *bus.Mux {
	mux := bus.NewMux(func(msg string, args ...any) { s.n.log.Debug(msg, args...) })
	s.handled = make(map[string]bool)
	handle := func(typ string, h func(context.Context, *bus.Msg)) {
		mux.HandleFunc(typ, h)
		s.handled[typ] = true
	}
	handle(protocol.MAUMCUCreateConfReq, s.hostHandler(protocol.MCUCreateConfAck, protocol.MCUCreateConfNack))
	handle(protocol.MAUMCURestoreConfReq, s.hostHandler(protocol.MCURestoreConfAck, protocol.MCURestoreConfNack))
	handle(protocol.MAUMCUReleaseConfCmd, s.handleRelease)
	handle(protocol.MAUMCUConfDurationNtf, s.handleDuration)
	handle(protocol.MAUMCUConfWillEndNtf, s.handleWillEnd)
	handle(protocol.MAUMCUModifyConfNameReq, s.handleRename)
	handle(protocol.MAUMCUModifyPasswordReq, s.handlePassword)
	handle(protocol.MAUMCUStartMonitorReq, s.handleStartMonitor)
	handle(protocol.MAUMCUStopMonitorCmd, s.handleStopMonitor)
	handle(protocol.CMMCUModifyConfNameAck, s.handleRenameAnswer)
	handle(protocol.CMMCUModifyConfNameNak, s.handleRenameAnswer)
	handle(protocol.MAUMCUGetConfListCmd, s.handleGetConfList)
	if !s.n.opts.OldProtocol {
		handle(protocol.MAUMCUConfListAck, s.handleConfListAck)
		handle(protocol.MAUMCURestoreConfsReq, s.handleRestoreMany)
		handle(protocol.MAUMCUReleaseConfsCmd, s.handleReleaseMany)
	}
	handle(protocol.AudioBreakoutRoomStateToMixer, s.handleAudio)
	handle(protocol.AudioBreakoutRoomStateToCDTS, s.handleAudio)
	handle(protocol.AudioBreakoutSubscribeToMixer, s.handleAudio)
	handle(protocol.AudioBreakoutSubscribeToCDTS, s.handleAudio)
	return mux
}

// admit logs a received message and returns the fault that applies to it;
// ok is false when the message must be neither applied nor answered (a
// Silent fault).
func (s *session) admit(m *bus.Msg, e164 string) (f *Fault, ok bool) {
	s.n.recv.add(m.Type, e164)
	f = s.n.faultFor(m.Type)
	if f != nil && f.ApplyDelay > 0 {
		time.Sleep(f.ApplyDelay)
	}
	return f, f == nil || !f.Silent
}

// answer replies v to m (nothing when m expects no reply), after the
// fault's delay if it has one, then runs then when not nil. A delayed reply
// is dropped if the session has ended meanwhile.
func (s *session) answer(m *bus.Msg, f *Fault, v any, then func()) {
	if f != nil && f.AckDelay > 0 {
		time.AfterFunc(f.AckDelay, func() {
			s.gate.RLock()
			defer s.gate.RUnlock()
			if !s.closed {
				s.send(m, v, then)
			}
		})
		return
	}
	s.send(m, v, then)
}

func (s *session) send(m *bus.Msg, v any, then func()) {
	if err := m.Respond(v); err != nil {
		s.n.log.Debug("reply not sent", "type", m.Type, "err", err)
	}
	if then != nil {
		then()
	}
}

// refuse answers a NACK of type typ (ERROR when the request has no NACK).
func (s *session) refuse(m *bus.Msg, f *Fault, typ, e164, code, msg string) {
	s.answer(m, f, protocol.Nack{Type: typ, E164: e164, ErrCode: code, ErrMsg: msg}, nil)
}

// injected is the errmsg of a NACK a Fault asked for.
func (s *session) injected() string {
	return "fault injected on node " + s.n.opts.ID
}

func (s *session) notHosted(e164 string) string {
	return fmt.Sprintf("node %s does not host conference %s", s.n.opts.ID, e164)
}

// hostHandler handles MAU_MCU_CREATECONF_REQ and MAU_MCU_RESTORECONF_REQ.
func (s *session) hostHandler(ackType, nackType string) func(context.Context, *bus.Msg) {
	return func(_ context.Context, m *bus.Msg) {
		n := s.n
		var req hostReq
		err := m.Decode(&req)
		e164 := req.Conf.E164
		f, ok := s.admit(m, e164)
		if !ok {
			return
		}
		reply := protocol.NodeConfAck{Type: ackType, E164: e164, IP: n.opts.IP, PID: s.pid}
		switch {
		case err != nil || e164 == "":
			reply.Type, reply.ErrCode, reply.ErrMsg = nackType, protocol.ErrBadRequest, "a conference with an e164 is required"
		case f != nil && f.Nack != "":
			reply.Type, reply.ErrCode, reply.ErrMsg = nackType, f.Nack, s.injected()
		case n.host(e164, req.Conf.Name, req.Conf.Password, req.Conf.EndTime, req.Conf.Duration):
			reply.Type, reply.ErrCode = nackType, CodeNodeFull
			reply.ErrMsg = fmt.Sprintf("node %s hosts as many conferences as its capacity (%d)", n.opts.ID, n.opts.Capacity)
		}
		s.answer(m, f, reply, nil)
	}
}

// handleRelease handles MAU_MCU_RELEASECONF_CMD: ACK (also for a conference
// not hosted, so retries are harmless), then MCU_MAU_RELEASECONF_NTF if it
// was hosted.
func (s *session) handleRelease(_ context.Context, m *bus.Msg) {
	var req protocol.ConfReq
	err := m.Decode(&req)
	f, ok := s.admit(m, req.E164)
	if !ok {
		return
	}
	switch {
	case err != nil || req.E164 == "":
		s.refuse(m, f, protocol.ErrorReplyType, req.E164, protocol.ErrBadRequest, "an e164 is required")
		return
	case f != nil && f.Nack != "":
		s.refuse(m, f, protocol.ErrorReplyType, req.E164, f.Nack, s.injected())
		return
	}
	var then func()
	if s.n.release(req.E164) {
		then = func() { _ = s.publishReleased(req.E164, ReasonReleased) }
	}
	s.answer(m, f, protocol.Ack{Type: protocol.MCUReleaseConfAck, E164: req.E164}, then)
}

// handleDuration handles MAU_MCU_CONFDURATION_NTF: a new end time.
func (s *session) handleDuration(_ context.Context, m *bus.Msg) {
	var ntf protocol.ConfDurationNtf
	err := m.Decode(&ntf)
	f, ok := s.admit(m, ntf.E164)
	if !ok || err != nil || (f != nil && f.Nack != "") {
		return
	}
	if !s.n.update(ntf.E164, func(c *conf) { c.endTime, c.duration = ntf.EndTime, ntf.DurationMinutes }) {
		s.n.log.Debug("duration of a conference not hosted", "e164", ntf.E164)
	}
}

// handleWillEnd handles MAU_MCU_CONFWILLEND_NTF.
func (s *session) handleWillEnd(_ context.Context, m *bus.Msg) {
	var ntf protocol.ConfWillEndNtf
	err := m.Decode(&ntf)
	f, ok := s.admit(m, ntf.E164)
	if !ok || err != nil || (f != nil && f.Nack != "") {
		return
	}
	s.n.update(ntf.E164, func(c *conf) { c.willEnd = true })
}

// handleRename handles MAU_MCU_MODIFYCONFNAME_REQ.
func (s *session) handleRename(_ context.Context, m *bus.Msg) {
	var req protocol.ModifyConfNameReq
	err := m.Decode(&req)
	f, ok := s.admit(m, req.E164)
	if !ok {
		return
	}
	switch {
	case err != nil || req.E164 == "":
		s.refuse(m, f, protocol.MCUModifyConfNameNack, req.E164, protocol.ErrBadRequest, "an e164 is required")
	case f != nil && f.Nack != "":
		s.refuse(m, f, protocol.MCUModifyConfNameNack, req.E164, f.Nack, s.injected())
	case !s.n.update(req.E164, func(c *conf) { c.name = req.Name }):
		s.refuse(m, f, protocol.MCUModifyConfNameNack, req.E164, protocol.ErrConfNotFound, s.notHosted(req.E164))
	default:
		s.answer(m, f, protocol.Ack{Type: protocol.MCUModifyConfNameAck, E164: req.E164}, func() {
			s.publishStateChange(protocol.ConfStateChangeNtf{E164: req.E164, Name: &req.Name})
		})
	}
}

// handlePassword handles MAU_MCU_MODIFYPASSWORD_REQ.
func (s *session) handlePassword(_ context.Context, m *bus.Msg) {
	var req protocol.ModifyPasswordReq
	err := m.Decode(&req)
	f, ok := s.admit(m, req.E164)
	if !ok {
		return
	}
	switch {
	case err != nil || req.E164 == "":
		s.refuse(m, f, protocol.MCUModifyPasswordNack, req.E164, protocol.ErrBadRequest, "an e164 is required")
	case f != nil && f.Nack != "":
		s.refuse(m, f, protocol.MCUModifyPasswordNack, req.E164, f.Nack, s.injected())
	case !s.n.update(req.E164, func(c *conf) { c.password = req.Password }):
		s.refuse(m, f, protocol.MCUModifyPasswordNack, req.E164, protocol.ErrConfNotFound, s.notHosted(req.E164))
	default:
		s.answer(m, f, protocol.Ack{Type: protocol.MCUModifyPasswordAck, E164: req.E164}, func() {
			s.publishStateChange(protocol.ConfStateChangeNtf{E164: req.E164, Password: &req.Password})
		})
	}
}

// handleStartMonitor handles MAU_MCU_STARTMONITOR_REQ: stream the
// conference to ip:port.
func (s *session) handleStartMonitor(_ context.Context, m *bus.Msg) {
	var req protocol.MonitorReq
	err := m.Decode(&req)
	f, ok := s.admit(m, req.E164)
	if !ok {
		return
	}
	addr := net.JoinHostPort(req.IP, strconv.Itoa(req.Port))
	switch {
	case err != nil || req.E164 == "" || req.IP == "" || req.Port <= 0 || req.Port > 65535:
		s.refuse(m, f, protocol.MCUStartMonitorNack, req.E164, protocol.ErrBadRequest, "an e164, an ip and a port are required")
	case f != nil && f.Nack != "":
		s.refuse(m, f, protocol.MCUStartMonitorNack, req.E164, f.Nack, s.injected())
	case !s.n.update(req.E164, func(c *conf) {
		if !slices.Contains(c.monitors, addr) {
			c.monitors = append(c.monitors, addr)
		}
	}):
		s.refuse(m, f, protocol.MCUStartMonitorNack, req.E164, protocol.ErrConfNotFound, s.notHosted(req.E164))
	default:
		s.answer(m, f, protocol.Ack{Type: protocol.MCUStartMonitorAck, E164: req.E164}, nil)
	}
}

// handleStopMonitor handles MAU_MCU_STOPMONITOR_CMD; asked with a reply
// subject, it answers a bare ACK, also for a session it did not have.
func (s *session) handleStopMonitor(_ context.Context, m *bus.Msg) {
	var req protocol.MonitorReq
	err := m.Decode(&req)
	f, ok := s.admit(m, req.E164)
	if !ok {
		return
	}
	switch {
	case err != nil:
		s.refuse(m, f, protocol.ErrorReplyType, req.E164, protocol.ErrBadRequest, "undecodable stop-monitor command")
		return
	case f != nil && f.Nack != "":
		s.refuse(m, f, protocol.ErrorReplyType, req.E164, f.Nack, s.injected())
		return
	}
	addr := net.JoinHostPort(req.IP, strconv.Itoa(req.Port))
	s.n.update(req.E164, func(c *conf) {
		c.monitors = slices.DeleteFunc(c.monitors, func(a string) bool { return a == addr })
	})
	s.answer(m, f, protocol.Ack{Type: protocol.GenericAckType, E164: req.E164}, nil)
}

// handleRenameAnswer handles CM_MCU_MODIFYCONFNAME_ACK|NACK, the CM's answer
// to RequestRename: an ACK applies the name, a NACK keeps the old one.
func (s *session) handleRenameAnswer(_ context.Context, m *bus.Msg) {
	var ans protocol.ModifyConfNameReq
	err := m.Decode(&ans)
	f, ok := s.admit(m, ans.E164)
	if !ok || err != nil || (f != nil && f.Nack != "") {
		return
	}
	if m.Type != protocol.CMMCUModifyConfNameAck {
		s.n.log.Debug("CM refused a rename", "e164", ans.E164, "mtreqid", ans.MtReqID, "code", ans.ErrCode)
		return
	}
	if ans.Name == "" {
		s.n.log.Debug("CM accepted a rename without a name", "e164", ans.E164, "mtreqid", ans.MtReqID)
		return
	}
	if s.n.update(ans.E164, func(c *conf) { c.name = ans.Name }) {
		s.publishStateChange(protocol.ConfStateChangeNtf{E164: ans.E164, Name: &ans.Name})
	}
}

// publishStateChange publishes MCU_MAU_CONFSTATECHANGE_NTF.
func (s *session) publishStateChange(ntf protocol.ConfStateChangeNtf) {
	ntf.Type, ntf.Node = protocol.MCUConfStateChangeNtf, s.n.opts.ID
	if err := s.n.bus.Publish(protocol.SubjectFromNodes(s.n.opts.Platform), ntf); err != nil {
		s.n.log.Debug("state change not sent", "e164", ntf.E164, "err", err)
	}
}
