package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// nodeList is the last conference list a node sent.
type nodeList struct {
	at      time.Time
	ip, pid string
	room    string
	confs   map[string]int64 // e164 -> the node's create time
}

// listMargin is how much older than a node's list a conference must be for
// its absence from the list to count: a create acknowledged after the list
// was taken is not missing.
const listMargin = time.Second

// handleConfList reconciles the store with what a node really hosts
// (MCU_MAU_CONFLIST_NTF, 000 §9.2):
//   - the store attributes a conference to this node but the node lacks it:
//     creating → leave it; same ip and pid → it ended there, clear it;
//     otherwise (the node restarted) → pending-restore;
//   - the node reports a conference the store does not know → end it there;
//   - the store attributes it to another node → the same conference on two
//     nodes: the older copy ends, and the store follows the newer one
//     (duplicate.go), unless a create or restore is under way;
//   - pending-restore and reported by its node → running again, unless an
//     operator failed its room: then the node is told to release it. A room
//     that failed because all its nodes were lost is disproved by a node
//     reporting from it, so there the conference is adopted.
func (s *Scheduler) handleConfList(ctx context.Context, m *bus.Msg) {
	var ntf protocol.ConfListNtf
	if err := m.Decode(&ntf); err != nil {
		s.log.Warn("bad conference list", "err", err)
		return
	}
	if s.dead.Load() || !protocol.ValidToken(ntf.Node) || !s.holdsLease() {
		return
	}
	t := s.currentTerm()
	if t == nil {
		return
	}
	mu := s.nodeLock(ntf.Node)
	mu.Lock()
	defer mu.Unlock()
	list := nodeList{at: time.Now(), ip: ntf.IP, pid: ntf.PID, room: ntf.Room, confs: make(map[string]int64, len(ntf.Confs))}
	for _, c := range ntf.Confs {
		list.confs[c.E164] = c.CreateTime
	}
	s.mu.Lock()
	s.lists[ntf.Node] = list
	s.rooms[ntf.Node] = ntf.Room
	if t.expect[ntf.Node] {
		delete(t.expect, ntf.Node)
		if len(t.expect) == 0 {
			t.graceOnce.Do(func() { close(t.graceDone) })
		}
	}
	s.mu.Unlock()

	if s.ownDown.Load() {
		// This platform is switched over: its backups run its conferences
		// now; its nodes let theirs go (000 §2.3.1).
		for _, c := range ntf.Confs {
			s.tellNode(ntf.Node, protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: c.E164})
		}
		return
	}
	// The possible-service platforms' stores all may attribute conferences
	// to this node (000 §9.2). Only the differences are read: in steady
	// state a node reports just what the stores attribute to it, running.
	attributedAll := map[string]bool{}
	homeOf := map[string]string{}
	pendingAll := map[string]bool{}
	for _, w := range s.stores() {
		attributed, err := w.st.NodeConferences(ctx, ntf.Node)
		if err != nil {
			s.log.Warn("reconcile: could not read the node's conferences", "node", ntf.Node, "platform", w.platform, "err", err)
			return
		}
		pending, err := w.st.Pending(ctx)
		if err != nil {
			s.log.Warn("reconcile: could not read pending conferences", "platform", w.platform, "err", err)
			return
		}
		for _, e := range pending {
			pendingAll[e] = true
		}
		var missing []string
		for _, e := range attributed {
			attributedAll[e] = true
			homeOf[e] = w.platform
			if _, ok := list.confs[e]; !ok {
				missing = append(missing, e)
			}
		}
		if len(missing) > 0 {
			s.reconcileMissing(ctx, w, ntf, missing)
		}
	}
	_, manual := s.roomAbnormal(ntf.Room)
	examine := make([]string, 0, 8)
	for _, c := range ntf.Confs {
		if manual || !attributedAll[c.E164] || pendingAll[c.E164] {
			examine = append(examine, c.E164)
		}
	}
	if len(examine) > 0 {
		s.reconcileReported(ctx, ntf, examine)
	}
	s.controlReported(ntf, attributedAll, pendingAll, homeOf)
}

// controlReported takes the control subject of conferences the node runs
// where the store puts them but that this instance does not hold: a create
// that another instance finished after this one took over (it lost its
// lease mid-create) runs, and its CM must still reach it.
func (s *Scheduler) controlReported(ntf protocol.ConfListNtf, attributed, pending map[string]bool, homeOf map[string]string) {
	var missing []string
	s.mu.Lock()
	for _, c := range ntf.Confs {
		if _, ok := s.controls[c.E164]; !ok && attributed[c.E164] && !pending[c.E164] && !s.inflight[c.E164] {
			missing = append(missing, c.E164)
		}
	}
	s.mu.Unlock()
	for _, e := range missing {
		if err := s.subscribeControl(e, homeOf[e]); err != nil {
			s.log.Warn("could not take the control of a conference its node reports", "e164", e, "err", err)
			continue
		}
		s.log.Info("took the control of a conference its node reports", "e164", e, "node", ntf.Node)
	}
}

func (s *Scheduler) nodeLock(node string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	mu := s.nodeMu[node]
	if mu == nil {
		mu = &sync.Mutex{}
		s.nodeMu[node] = mu
	}
	return mu
}

// located is a conference and the store that holds it.
type located struct {
	c protocol.Conference
	w where
}

// briefs reads conferences from whichever possible-service store holds
// them.
func (s *Scheduler) briefs(ctx context.Context, e164s []string) (map[string]located, error) {
	out := make(map[string]located, len(e164s))
	rest := e164s
	for _, w := range s.stores() {
		if len(rest) == 0 {
			break
		}
		got, err := w.st.Brief(ctx, rest)
		if err != nil {
			return nil, err
		}
		next := rest[:0:0]
		for _, e := range rest {
			if c, ok := got[e]; ok {
				out[e] = located{c, w}
			} else {
				next = append(next, e)
			}
		}
		rest = next
	}
	return out, nil
}

// reconcileMissing handles conferences a store attributes to the node that
// its list lacks.
func (s *Scheduler) reconcileMissing(ctx context.Context, w where, ntf protocol.ConfListNtf, missing []string) {
	briefs, err := w.st.Brief(ctx, missing)
	if err != nil {
		s.log.Warn("reconcile: could not read conferences", "node", ntf.Node, "err", err)
		return
	}
	fresh := ntf.SentAtMs - (s.opts.NodeTimeout + listMargin).Milliseconds()
	for e, c := range briefs {
		if c.Node != ntf.Node || c.State == protocol.StateCreating || c.CreateTime > fresh || s.isInflight(e) {
			continue
		}
		if c.NodeIP == ntf.IP && c.NodePID == ntf.PID {
			// The very process that had it does not: it ended there.
			old, err := w.st.Release(ctx, e, store.ReleaseCond{Node: ntf.Node})
			if err == nil {
				s.log.Info("conference gone from its node: cleared", "e164", e, "node", ntf.Node)
				s.ended(old, ReasonOnNode, false)
			}
			continue
		}
		if c.State != protocol.StateRunning || c.Legacy {
			continue
		}
		reason := fmt.Sprintf("media node %s restarted (pid %s, now %s) without it", ntf.Node, c.NodePID, ntf.PID)
		if err := w.st.PendOne(ctx, e, ntf.Node, reason); err == nil {
			s.loads.add(ntf.Node, -1)
			s.notifyCMOf(w.platform, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: e, Domain: c.Domain, State: protocol.StatePendingRestore, Node: ntf.Node, Reason: reason})
			s.kickRestore()
		}
	}
}

// reconcileReported handles what the node says it hosts.
func (s *Scheduler) reconcileReported(ctx context.Context, ntf protocol.ConfListNtf, reported []string) {
	briefs, err := s.briefs(ctx, reported)
	if err != nil {
		s.log.Warn("reconcile: could not read conferences", "node", ntf.Node, "err", err)
		return
	}
	_, abnormal := s.roomAbnormal(ntf.Room) // failed by an operator
	release := func(e, why string) {
		s.log.Info("conference released on a node that must not host it", "e164", e, "node", ntf.Node, "why", why)
		s.tellNode(ntf.Node, protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: e})
		s.m.op("reconcile-release", nil)
	}
	created := make(map[string]int64, len(ntf.Confs))
	for _, c := range ntf.Confs {
		created[c.E164] = c.CreateTime
	}
	for _, e := range reported {
		l, known := briefs[e]
		c := l.c
		switch {
		case s.isInflight(e):
		case !known:
			release(e, "the store does not know it")
		case c.Node != ntf.Node:
			if c.State != protocol.StateCreating {
				s.duplicate(ctx, l, ntf, created[e], release)
			}
		case c.State == protocol.StatePendingRestore && abnormal:
			release(e, "its room failed; it is restored elsewhere")
		case c.State == protocol.StatePendingRestore && s.released.told(ntf.Node, e):
			// A restore it did not answer in time, done late: the node
			// was told to let it go and will; it is restored afresh.
			release(e, "a late copy: the node was told to let it go")
		case c.State == protocol.StatePendingRestore:
			s.adoptReported(ctx, l.w, ntf, c)
		case c.State == protocol.StateRunning && abnormal && !c.Legacy:
			if err := l.w.st.PendOne(ctx, e, ntf.Node, "server room "+ntf.Room+" failed"); err == nil {
				s.loads.add(ntf.Node, -1)
				release(e, "its room failed")
				s.kickRestore()
			}
		}
	}
}

// adoptReported: a pending-restore conference its node still hosts runs
// there again (a short disconnect, a scheduler restart).
func (s *Scheduler) adoptReported(ctx context.Context, w where, ntf protocol.ConfListNtf, c protocol.Conference) {
	err := w.st.Adopt(ctx, c.E164, ntf.Node)
	if err != nil {
		if !errors.Is(err, store.ErrStateConflict) {
			s.log.Warn("could not adopt a reported conference", "e164", c.E164, "err", err)
		}
		return
	}
	s.loads.add(ntf.Node, 1)
	s.mu.Lock()
	r := s.restore
	s.mu.Unlock()
	if r != nil {
		r.done(c.E164)
	}
	_ = s.subscribeControl(c.E164, w.platform)
	c.State = protocol.StateRunning
	s.reportRunning(&c)
	s.notifyCMOf(w.platform, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: c.E164, Domain: c.Domain, State: protocol.StateRunning, Node: ntf.Node, Reason: "reported by its node"})
	s.log.Info("conference adopted back from its node's report", "e164", c.E164, "node", ntf.Node)
	s.m.op("adopt", nil)
}
