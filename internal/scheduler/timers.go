package scheduler

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// checkEndTimes ends conferences whose end time has come and tells the CM
// and the node of those about to end (000 §9.3). Only conferences that
// really run on this platform are this scheduler's to end, in whichever
// possible-service store they are.
func (s *Scheduler) checkEndTimes(ctx context.Context) {
	if s.dr.ownDown() {
		return
	}
	now := time.Now()
	looked := true
	defer func() {
		if looked {
			s.act.endChecks.Add(1)
		}
	}()
	for _, w := range s.dr.stores() {
		soon, err := w.st.EndingBefore(ctx, now.Add(s.opts.WillEndNotice).UnixMilli())
		if err != nil {
			looked = false
			s.log.Warn("end-time check failed", "platform", w.platform, "err", err)
			continue
		}
		if len(soon) == 0 {
			continue
		}
		confs, err := w.st.Conferences(ctx, soon)
		if err != nil {
			looked = false
			s.log.Warn("end-time check failed", "platform", w.platform, "err", err)
			continue
		}
		for _, c := range confs {
			if c.RealPlatform != s.opts.Platform {
				continue
			}
			switch {
			case c.EndTime <= now.UnixMilli():
				if c.State == protocol.StateCreating && now.UnixMilli()-c.CreateTime < s.opts.NodeTimeout.Milliseconds()*2 {
					continue // a create still under way finishes first
				}
				s.ctl.learn(c.E164, w.platform)
				if err := s.Release(ctx, c.E164, ReasonEndTime); err != nil {
					s.log.Warn("could not end a conference at its end time", "e164", c.E164, "err", err)
				}
			case c.State == protocol.StateRunning && !c.WillEndNotified:
				s.willEndNotice(ctx, w, c, now)
			}
		}
	}
}

func (s *Scheduler) willEndNotice(ctx context.Context, w where, c protocol.Conference, now time.Time) {
	if s.ctl.toldEnd(c.E164, c.EndTime) {
		return
	}
	if err := w.st.Update(ctx, c.E164, "willendntf", "1"); err != nil {
		return
	}
	ntf := protocol.ConfWillEndNtf{E164: c.E164, EndTime: c.EndTime, Seconds: int((c.EndTime - now.UnixMilli()) / 1000)}
	ntf.Type = protocol.MAUMCUConfWillEndNtf
	s.tellNode(c.Node, ntf)
	ntf.Type = protocol.MAUConfWillEndNtf
	if err := s.dr.cmBus(w.platform).Publish(protocol.SubjectCMRequests, ntf); err != nil {
		s.log.Warn("could not tell the CM a conference is about to end", "e164", c.E164, "err", err)
	}
}

func monitorCheckInterval(ttl time.Duration) time.Duration {
	d := ttl / 4
	if d < 50*time.Millisecond {
		d = 50 * time.Millisecond
	}
	if d > 5*time.Second {
		d = 5 * time.Second
	}
	return d
}

// expireMonitors stops monitoring sessions the CM stopped keeping alive
// (000 §6): the node stops streaming and the CM is told.
func (s *Scheduler) expireMonitors(ctx context.Context) {
	var stale []store.Monitor
	looked := true
	defer func() {
		if looked {
			s.act.monitorChecks.Add(1)
		}
	}()
	for _, w := range s.dr.stores() {
		part, err := w.st.StaleMonitors(ctx, time.Now().Add(-s.opts.MonitorTTL).UnixMilli())
		if err != nil {
			looked = false
			s.log.Warn("monitor expiry check failed", "platform", w.platform, "err", err)
			continue
		}
		for _, m := range part {
			s.ctl.learn(m.E164, w.platform)
		}
		stale = append(stale, part...)
	}
	for _, mon := range stale {
		host, port := splitAddr(mon.Addr)
		if err := s.stopMonitor(ctx, mon.E164, host, port, "keep-alive expired"); err != nil {
			s.log.Debug("monitor already gone", "e164", mon.E164, "addr", mon.Addr)
			continue
		}
		s.m.op("monitor-expired", nil)
	}
}

func splitAddr(addr string) (string, int) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	port, _ := strconv.Atoi(portStr)
	return host, port
}
