package scheduler

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// Reasons a conference ends, in notices and metrics.
const (
	ReasonReleased = "released" // its CM ended it
	ReasonEndTime  = "end-time" // its end time came
	ReasonOnNode   = "ended-on-node"
)

// controlRoutes registers the per-conference CM requests (mau.cmcmu.<e164>,
// served as controlset.go says) on a mux.
func (s *Scheduler) controlRoutes(x *bus.Mux) {
	x.HandleFunc(protocol.CMReleaseConfReq, s.handleRelease)
	x.HandleFunc(protocol.CMDelayConfReq, s.handleDelay)
	x.HandleFunc(protocol.CMModifyConfNameReq, s.handleRename)
	x.HandleFunc(protocol.CMModifyPasswordReq, s.handlePassword)
	x.HandleFunc(protocol.CMStartMonitorReq, s.handleStartMonitor)
	x.HandleFunc(protocol.CMStopMonitorReq, s.handleStopMonitor)
	x.HandleFunc(protocol.CMMonitorKeepAlive, s.handleKeepAlive)
	x.HandleFunc(protocol.CMMCUModifyConfNameAck, s.handleCMRenameAnswer)
	x.HandleFunc(protocol.CMMCUModifyConfNameNak, s.handleCMRenameAnswer)
}

// Controlled reports whether this scheduler serves e164's control.
func (s *Scheduler) Controlled(e164 string) bool { return s.ctl.has(e164) }

func respondErr(m *bus.Msg, typ, e164 string, err error) {
	e := asError(err)
	_ = m.Respond(protocol.Nack{Type: typ, E164: e164, ErrCode: e.Code, ErrMsg: e.Message})
}

func (s *Scheduler) handleRelease(ctx context.Context, m *bus.Msg) {
	var req protocol.ConfReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(protocol.MAUReleaseConfNack, protocol.ErrBadRequest, err.Error())
		return
	}
	err := s.Release(ctx, req.E164, ReasonReleased)
	s.m.op("release", err)
	if err != nil {
		respondErr(m, protocol.MAUReleaseConfNack, req.E164, err)
		return
	}
	_ = m.Respond(protocol.Ack{Type: protocol.MAUReleaseConfAck, E164: req.E164})
}

// Release ends a conference: the store first (so the node's own end notice
// finds nothing left to do), then its node, its control subscription, the
// registry and the CM.
func (s *Scheduler) Release(ctx context.Context, e164, reason string) error {
	w, err := s.locate(ctx, e164)
	if err != nil {
		return err
	}
	old, err := w.st.Release(ctx, e164, store.ReleaseCond{})
	if err != nil {
		return storeError(e164, err)
	}
	s.ended(old, reason, true)
	return nil
}

// ended is everything after a conference left the store.
func (s *Scheduler) ended(old protocol.Conference, reason string, tellNode bool) {
	if old.Node != "" && old.State != protocol.StateCreating {
		s.loads.add(old.Node, -1)
		if tellNode {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.ReleaseTimeout)
			err := s.bus.Call(ctx, protocol.SubjectToNode(old.Node), protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: old.E164}, nil)
			cancel()
			if err != nil {
				s.log.Warn("node did not confirm the release; the conference-list check will end it there", "e164", old.E164, "node", old.Node, "err", err)
				// The node may act on the release late: until it answers
				// (the prober repeats the release), no pick goes to it, so
				// a new conference of the same number never lands where
				// the late release would end it.
				if !isNack(err) {
					s.silenced(old.Node, old.E164)
				}
			}
		}
	}
	s.ctl.drop(old.E164)
	s.reportEnded(&old)
	s.m.releases.WithLabelValues(reason).Inc()
	s.notifyCMOf(old.Platform, protocol.ConfStateNtf{Type: protocol.MAUReleaseConfNtf, E164: old.E164, Domain: old.Domain, Node: old.Node, Reason: reason})
}

// notifyCM publishes a notification for the CM (meeting.mccntf).
func (s *Scheduler) notifyCM(v any) {
	if err := s.bus.Publish(protocol.SubjectCMNotifications, v); err != nil {
		s.log.Warn("could not notify the CM", "err", err)
	}
}

// running reads a conference and checks it runs with a node to talk to.
func (s *Scheduler) running(ctx context.Context, e164 string) (protocol.Conference, where, error) {
	w, err := s.locate(ctx, e164)
	if err != nil {
		return protocol.Conference{}, w, err
	}
	c, err := w.st.Conference(ctx, e164)
	if err != nil {
		return c, w, storeError(e164, err)
	}
	if c.State != protocol.StateRunning || c.Node == "" {
		return c, w, fail(protocol.ErrConfNotRunning, nil, "conference %s is %s; try again once it runs", e164, c.State)
	}
	return c, w, nil
}

func (s *Scheduler) handleDelay(ctx context.Context, m *bus.Msg) {
	var req protocol.DelayConfReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(protocol.MAUDelayConfNack, protocol.ErrBadRequest, err.Error())
		return
	}
	ntf, err := s.Delay(ctx, req.E164, req.Minutes)
	s.m.op("delay", err)
	if err != nil {
		respondErr(m, protocol.MAUDelayConfNack, req.E164, err)
		return
	}
	ntf.Type = protocol.MAUDelayConfAck
	_ = m.Respond(ntf)
}

// Delay pushes a conference's end back (000 §5.3) and tells the CM and the
// node the new length.
func (s *Scheduler) Delay(ctx context.Context, e164 string, minutes int) (protocol.ConfDurationNtf, error) {
	return s.delay(ctx, e164, minutes, true)
}

func (s *Scheduler) delay(ctx context.Context, e164 string, minutes int, tellNode bool) (protocol.ConfDurationNtf, error) {
	if minutes < 1 {
		return protocol.ConfDurationNtf{}, fail(protocol.ErrBadRequest, nil, "field \"delaytime\" must be at least 1 minute")
	}
	w, err := s.locate(ctx, e164)
	if err != nil {
		return protocol.ConfDurationNtf{}, err
	}
	// The store holds the one limit on a conference's length, against the
	// length booked so far, so that no run of delays exceeds it.
	end, dur, err := w.st.DelayWithin(ctx, e164, minutes, s.opts.MaxDurationMinutes)
	if err != nil {
		return protocol.ConfDurationNtf{}, storeError(e164, err)
	}
	s.ctl.endChanged(e164)
	ntf := protocol.ConfDurationNtf{E164: e164, DurationMinutes: dur, EndTime: end}
	c, err := w.st.Conference(ctx, e164)
	if tellNode && err == nil && c.Node != "" {
		ntf.Type = protocol.MAUMCUConfDurationNtf
		s.tellNode(c.Node, ntf)
	}
	ntf.Type = protocol.MAUConfDurationNtf
	s.notifyCMOf(w.platform, ntf)
	return ntf, nil
}

func (s *Scheduler) handleRename(ctx context.Context, m *bus.Msg) {
	var req protocol.ModifyConfNameReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(protocol.MAUModifyConfNameNak, protocol.ErrBadRequest, err.Error())
		return
	}
	err := s.Rename(ctx, req.E164, req.Name)
	s.m.op("rename", err)
	if err != nil {
		respondErr(m, protocol.MAUModifyConfNameNak, req.E164, err)
		return
	}
	req.Type = protocol.MAUModifyConfNameAck
	_ = m.Respond(req)
}

// Rename renames a running conference: the node applies it, then the store.
func (s *Scheduler) Rename(ctx context.Context, e164, name string) error {
	if err := checkText("confname", &name, "", nil); err != nil {
		return err
	}
	c, w, err := s.running(ctx, e164)
	if err != nil {
		return err
	}
	nctx, cancel := context.WithTimeout(ctx, s.opts.NodeTimeout)
	defer cancel()
	if err := s.bus.Call(nctx, protocol.SubjectToNode(c.Node), protocol.ModifyConfNameReq{Type: protocol.MAUMCUModifyConfNameReq, E164: e164, Name: name}, nil); err != nil {
		return nodeError(c.Node, err)
	}
	if err := w.st.Update(ctx, e164, "confname", name); err != nil {
		return storeError(e164, err)
	}
	s.reportName(&c, name)
	return nil
}

func (s *Scheduler) handlePassword(ctx context.Context, m *bus.Msg) {
	var req protocol.ModifyPasswordReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(protocol.MAUModifyPasswordNak, protocol.ErrBadRequest, err.Error())
		return
	}
	err := s.SetPassword(ctx, req.E164, req.Password)
	s.m.op("password", err)
	if err != nil {
		respondErr(m, protocol.MAUModifyPasswordNak, req.E164, err)
		return
	}
	_ = m.Respond(protocol.Ack{Type: protocol.MAUModifyPasswordAck, E164: req.E164})
}

// SetPassword changes (or, empty, removes) a running conference's password.
func (s *Scheduler) SetPassword(ctx context.Context, e164, password string) error {
	if err := checkText("", nil, password, nil); err != nil {
		return err
	}
	c, w, err := s.running(ctx, e164)
	if err != nil {
		return err
	}
	nctx, cancel := context.WithTimeout(ctx, s.opts.NodeTimeout)
	defer cancel()
	if err := s.bus.Call(nctx, protocol.SubjectToNode(c.Node), protocol.ModifyPasswordReq{Type: protocol.MAUMCUModifyPasswordReq, E164: e164, Password: password}, nil); err != nil {
		return nodeError(c.Node, err)
	}
	if err := w.st.Update(ctx, e164, "password", password); err != nil {
		return storeError(e164, err)
	}
	return nil
}

// handleCMRenameAnswer forwards the CM's answer to a node's rename request
// (CM_MCU_MODIFYCONFNAME_ACK|NACK, 000 §5.1) to the node running it.
func (s *Scheduler) handleCMRenameAnswer(ctx context.Context, m *bus.Msg) {
	var ans protocol.ModifyConfNameReq
	if err := m.Decode(&ans); err != nil {
		s.log.Warn("bad rename answer from CM", "err", err)
		return
	}
	w, err := s.locate(ctx, ans.E164)
	if err != nil {
		return
	}
	c, err := w.st.Conference(ctx, ans.E164)
	if err != nil || c.Node == "" {
		s.log.Info("rename answer for a conference that no node runs", "e164", ans.E164)
		return
	}
	ans.Type = m.Type
	s.tellNode(c.Node, ans)
}

func monitorAddr(ip string, port int) (string, error) {
	if net.ParseIP(ip) == nil {
		return "", fail(protocol.ErrBadRequest, nil, "field \"ip\" %q is not an IP address", ip)
	}
	if port < 1 || port > 65535 {
		return "", fail(protocol.ErrBadRequest, nil, "field \"port\" must be 1 to 65535")
	}
	return net.JoinHostPort(ip, strconv.Itoa(port)), nil
}

func (s *Scheduler) handleStartMonitor(ctx context.Context, m *bus.Msg) {
	var req protocol.MonitorReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(protocol.MAUStartMonitorNack, protocol.ErrBadRequest, err.Error())
		return
	}
	err := s.StartMonitor(ctx, req.E164, req.IP, req.Port)
	s.m.op("monitor-start", err)
	if err != nil {
		respondErr(m, protocol.MAUStartMonitorNack, req.E164, err)
		return
	}
	_ = m.Respond(protocol.Ack{Type: protocol.MAUStartMonitorAck, E164: req.E164})
}

// StartMonitor has the conference's node stream it to ip:port; the session
// lives while the CM keeps it alive (000 §6).
func (s *Scheduler) StartMonitor(ctx context.Context, e164, ip string, port int) error {
	addr, err := monitorAddr(ip, port)
	if err != nil {
		return err
	}
	c, w, err := s.running(ctx, e164)
	if err != nil {
		return err
	}
	nctx, cancel := context.WithTimeout(ctx, s.opts.NodeTimeout)
	defer cancel()
	if err := s.bus.Call(nctx, protocol.SubjectToNode(c.Node), protocol.MonitorReq{Type: protocol.MAUMCUStartMonitorReq, E164: e164, IP: ip, Port: port}, nil); err != nil {
		return nodeError(c.Node, err)
	}
	if err := w.st.AddMonitor(ctx, e164, addr, time.Now().UnixMilli()); err != nil {
		s.tellNode(c.Node, protocol.MonitorReq{Type: protocol.MAUMCUStopMonitorCmd, E164: e164, IP: ip, Port: port})
		return storeError(e164, err)
	}
	return nil
}

func (s *Scheduler) handleStopMonitor(ctx context.Context, m *bus.Msg) {
	var req protocol.MonitorReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(protocol.MAUStopMonitorNack, protocol.ErrBadRequest, err.Error())
		return
	}
	err := s.stopMonitor(ctx, req.E164, req.IP, req.Port, "")
	s.m.op("monitor-stop", err)
	if err != nil {
		respondErr(m, protocol.MAUStopMonitorNack, req.E164, err)
		return
	}
	_ = m.Respond(protocol.Ack{Type: protocol.MAUStopMonitorAck, E164: req.E164})
}

// stopMonitor ends a session; with a reason, the CM is told it stopped.
func (s *Scheduler) stopMonitor(ctx context.Context, e164, ip string, port int, reason string) error {
	addr, err := monitorAddr(ip, port)
	if err != nil {
		return err
	}
	w, err := s.locate(ctx, e164)
	if err != nil {
		return err
	}
	if err := w.st.RemoveMonitor(ctx, e164, addr); err != nil {
		return storeError(e164, err)
	}
	if c, err := w.st.Conference(ctx, e164); err == nil && c.Node != "" {
		s.tellNode(c.Node, protocol.MonitorReq{Type: protocol.MAUMCUStopMonitorCmd, E164: e164, IP: ip, Port: port})
	}
	if reason != "" {
		s.notifyCMOf(w.platform, protocol.MonitorStoppedNtf{Type: protocol.MAUMonitorStoppedNtf, E164: e164, IP: ip, Port: port, Reason: reason})
	}
	return nil
}

// handleKeepAlive renews a monitoring session (CM_MAU_MONITORKEEPALIVE_NTF);
// it is not passed on to the node (000 §6). Sent as a request, it is
// answered.
func (s *Scheduler) handleKeepAlive(ctx context.Context, m *bus.Msg) {
	var req protocol.MonitorReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(protocol.GenericNackType, protocol.ErrBadRequest, err.Error())
		return
	}
	addr, err := monitorAddr(req.IP, req.Port)
	if err == nil {
		var w where
		if w, err = s.locate(ctx, req.E164); err == nil {
			if serr := w.st.KeepMonitorAlive(ctx, req.E164, addr, time.Now().UnixMilli()); serr != nil {
				err = storeError(req.E164, serr)
			}
		}
	}
	s.m.op("monitor-keepalive", err)
	if err != nil {
		respondErr(m, protocol.GenericNackType, req.E164, err)
		return
	}
	_ = m.Respond(protocol.Ack{Type: protocol.GenericAckType, E164: req.E164})
}
