package scheduler

import (
	"context"
	"time"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// graceTimer ends the start-up grace when every live node reported or
// StartGrace passed, then settles what no node reported.
func (s *Scheduler) graceTimer(t *term) {
	select {
	case <-t.graceDone:
	case <-time.After(s.opts.StartGrace):
		t.endGrace()
	case <-t.ctx.Done():
		return
	}
	// Settle only while sure to be the active one: a scheduler paused past
	// its lease waits for its renewal (or for the end of its term).
	for !s.lease.held() {
		select {
		case <-t.ctx.Done():
			return
		case <-time.After(s.opts.LeaseRenew):
		}
	}
	s.afterGrace(t)
}

// afterGrace settles the conferences the store held when this term began
// (000 §9.5, without moving what runs): running ones no live node reported
// become pending-restore; creates a dead scheduler left halfway are given
// back; restores it left halfway are finished if their node reported them,
// else retried.
func (s *Scheduler) afterGrace(t *term) {
	if s.dead.Load() {
		return
	}
	ctx := t.ctx
	s.mu.Lock()
	lists := make(map[string]nodeList, len(s.lists))
	for k, v := range s.lists {
		lists[k] = v
	}
	s.mu.Unlock()
	pended, settled := 0, 0
	for _, a := range t.adopted {
		c, w := a.c, a.w
		switch c.State {
		case protocol.StateRunning:
			if c.Legacy {
				continue
			}
			if l, heard := lists[c.Node]; heard && l.at.After(t.started) {
				continue // its node reported since: reconciliation had its say
			}
			reason := "not reported by media node " + c.Node + " after the scheduler started"
			if err := w.st.PendOne(ctx, c.E164, c.Node, reason); err == nil {
				s.loads.add(c.Node, -1)
				s.notifyCMOf(w.platform, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: c.E164, Domain: c.Domain, State: protocol.StatePendingRestore, Node: c.Node, Reason: reason})
				pended++
			}
		case protocol.StateCreating:
			if s.settleCreating(ctx, w, c, lists) {
				settled++
			}
		}
	}
	s.log.Info("start-up grace over", "pended", pended, "settled", settled, "nodes-reported", len(lists), "took", time.Since(t.started))
	s.kickRestore()
}

// settleCreating finishes or undoes a conference left creating by a
// scheduler that is gone. It reports whether it changed anything.
func (s *Scheduler) settleCreating(ctx context.Context, w where, c protocol.Conference, lists map[string]nodeList) bool {
	if s.inflight.has(c.E164) {
		return false
	}
	if c.Node == "" {
		// A create that never reached a node: give back what it took.
		old, err := w.st.Release(ctx, c.E164, store.ReleaseCond{State: protocol.StateCreating})
		if err != nil {
			return false
		}
		s.log.Info("abandoned create given back", "e164", c.E164)
		s.ended(old, "create abandoned", false)
		return true
	}
	if l, ok := lists[c.Node]; ok {
		if _, hosts := l.confs[c.E164]; hosts {
			if _, err := w.st.Commit(ctx, store.Placement{E164: c.E164, Node: c.Node, IP: l.ip, PID: l.pid, Room: l.room, RealPlatform: s.opts.Platform}); err == nil {
				s.ctl.add(c.E164, w.platform)
				c.State, c.NodeIP, c.NodePID = protocol.StateRunning, l.ip, l.pid
				s.reportRunning(&c)
				s.log.Info("abandoned restore finished: its node hosts it", "e164", c.E164, "node", c.Node)
				return true
			}
			return false
		}
	}
	if err := w.st.FailRestore(ctx, c.E164, c.Node, "restore abandoned by a scheduler that stopped"); err != nil {
		return false
	}
	s.loads.add(c.Node, -1)
	s.tellNode(c.Node, protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: c.E164})
	return true
}

// sweep settles conferences left creating for longer than a create or a
// restore can take (a scheduler died between two steps, a store reply was
// lost), reading only those, from the stores' creating index.
func (s *Scheduler) sweep(ctx context.Context) {
	if s.dead.Load() {
		return
	}
	s.released.prune()
	stale := time.Now().Add(-(2*s.opts.NodeTimeout + 2*time.Second)).UnixMilli()
	s.mu.Lock()
	lists := make(map[string]nodeList, len(s.lists))
	for k, v := range s.lists {
		lists[k] = v
	}
	s.mu.Unlock()
	for _, w := range s.dr.stores() {
		stuck, err := w.st.CreatingSince(ctx, stale)
		if err != nil {
			s.log.Warn("sweep: could not read conferences being created", "platform", w.platform, "err", err)
			continue
		}
		creating := stuck[:0]
		for _, e := range stuck {
			if !s.inflight.has(e) {
				creating = append(creating, e)
			}
		}
		if len(creating) == 0 {
			continue
		}
		briefs, err := w.st.Brief(ctx, creating)
		if err != nil {
			continue
		}
		for _, c := range briefs {
			if c.CreateTime > stale || c.RealPlatform != s.opts.Platform {
				continue
			}
			if s.settleCreating(ctx, w, c, lists) {
				s.m.op("sweep", nil)
			}
		}
	}
	s.kickRestore()
}
