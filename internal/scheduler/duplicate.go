package scheduler

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// The same conference hosted on two nodes (000 §9.2: "会议归属为其他MCU且本
// MCU创会时间较早 → 结束会议"): the copy created earlier ends, the newer one
// stays. Duplicates come from a node that was cut off while its
// conferences were restored elsewhere, from a restore whose answer was
// lost, or from a copy made behind the scheduler's back; the newer copy is
// the one the latest placement made, where the CM and the registry were
// sent.
//
// The store counts one copy; a node reporting another is handled here:
//   - its copy is older than the counted one (or as old): it ends there;
//   - its copy is newer: the store's record moves to it and the counted
//     copy's node lets its copy go;
// except that a copy on a node told to let it go (it did not answer its
// create or restore in time) is a late one and always ends, a legacy
// conference never moves, and nothing moves into a room an operator
// failed.
//
// A copy's creation time is what its node reports (MCU_MAU_CONFLIST_NTF's
// createtime); for the counted copy, before its node has reported it, the
// store's createtime (when its create or restore began).

// duplicate settles conference c, counted on c.Node, that node ntf reports
// too, created at reportedAt by that node's clock; abnormal says an
// operator failed the reporting node's room.
func (s *Scheduler) duplicate(ctx context.Context, l located, ntf protocol.ConfListNtf, reportedAt int64, abnormal bool, release func(e164, why string)) {
	c := l.c
	counted := s.copyTime(c)
	switch {
	case c.Legacy:
		release(c.E164, "the store counts the copy on a legacy node")
	case reportedAt <= counted:
		why := "an older copy than the one the store counts"
		if s.log.Enabled(ctx, slog.LevelDebug) {
			why = fmt.Sprintf("an older copy (created %d) than the one on %s (created %d) the store counts", reportedAt, c.Node, counted)
		}
		release(c.E164, why)
	case s.released.told(ntf.Node, c.E164):
		release(c.E164, "a late copy: the node was told to let it go")
	case abnormal:
		release(c.E164, "its room failed")
	default:
		s.moveToCopy(ctx, l.w, ntf, c, reportedAt, counted)
	}
}

// copyTime is when the counted copy of c was created: its node's report,
// or the store's createtime.
func (s *Scheduler) copyTime(c protocol.Conference) int64 {
	s.mu.Lock()
	l, ok := s.lists[c.Node]
	s.mu.Unlock()
	if ok {
		if t, hosts := l.confs[c.E164]; hosts && t > 0 {
			return t
		}
	}
	return c.CreateTime
}

// moveToCopy moves the store's record of c from the copy on c.Node to the
// newer copy on the reporting node: running (or pending-restore) on
// c.Node → pending-restore → creating on the reporter → running there.
// Each step is one conditional store transition, so a node's report or a
// restore racing it finds the state changed and leaves it; a scheduler
// that stops between two steps leaves a pending-restore conference for the
// restore loop, or a creating one that the sweep finishes (its node
// reports it) or hands to the restore loop. The licence is counted once
// throughout.
func (s *Scheduler) moveToCopy(ctx context.Context, w where, ntf protocol.ConfListNtf, c protocol.Conference, reportedAt, counted int64) {
	e164 := c.E164
	s.inflight.set(e164, true)
	defer s.inflight.set(e164, false)
	reason := fmt.Sprintf("a newer copy on media node %s (created %d) replaces the one on %s (created %d)", ntf.Node, reportedAt, c.Node, counted)
	if c.State == protocol.StateRunning {
		if err := w.st.PendOne(ctx, e164, c.Node, reason); err != nil {
			s.log.Debug("duplicate: the counted copy changed meanwhile", "e164", e164, "err", err)
			return
		}
		s.loads.add(c.Node, -1)
	}
	conf, prev, err := w.st.BeginRestore(ctx, e164, ntf.Node, ntf.Room)
	if err != nil {
		s.log.Warn("duplicate: could not move the record to the newer copy; the restore loop takes it", "e164", e164, "node", ntf.Node, "err", err)
		s.kickRestore()
		return
	}
	if _, err := w.st.Commit(ctx, store.Placement{
		E164: e164, Node: ntf.Node, IP: ntf.IP, PID: ntf.PID, Room: ntf.Room, RealPlatform: s.opts.Platform,
	}); err != nil {
		s.log.Warn("duplicate: the newer copy could not be recorded; the sweep settles it", "e164", e164, "node", ntf.Node, "err", err)
		return
	}
	s.loads.add(ntf.Node, 1)
	s.hosts(ntf.Node, e164)
	s.mu.Lock()
	r := s.restore
	s.mu.Unlock()
	if r != nil {
		r.done(e164)
	}
	if prev != "" && prev != ntf.Node {
		s.releaseCopies(prev, []string{e164})
	}
	s.ctl.add(e164, w.platform)
	s.stopMonitorsOf(ctx, w, e164, "the conference moved to another media node")
	conf.State, conf.Node, conf.Room, conf.NodeIP, conf.NodePID = protocol.StateRunning, ntf.Node, ntf.Room, ntf.IP, ntf.PID
	conf.RealPlatform = s.opts.Platform
	s.reportRunning(&conf)
	s.notifyCMOf(w.platform, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: e164, Domain: conf.Domain, State: protocol.StateRunning, Node: ntf.Node, Reason: reason})
	s.log.Info("duplicate conference: the store follows the newer copy", "e164", e164, "node", ntf.Node, "older", prev)
	s.m.op("duplicate-move", nil)
}
