package scheduler

import (
	"context"
	"errors"
	"sort"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// handleNodeState hears RMS: a node down makes its conferences
// pending-restore and starts their restore (000 §1.2, §9.4).
func (s *Scheduler) handleNodeState(ctx context.Context, m *bus.Msg) {
	var ntf protocol.NodeStateNtf
	if err := m.Decode(&ntf); err != nil {
		s.log.Warn("bad node state notice", "err", err)
		return
	}
	s.mu.Lock()
	s.rooms[ntf.Node] = ntf.Room
	s.mu.Unlock()
	// Either way RMS has the last word on the node now: down, it is not
	// offered, and the copies it reports are not adopted; up again, it is
	// offered afresh, silent before or not. Every node's next list is
	// compared with the stores in full.
	s.loads.heard(ntf.Node)
	if r := s.recovery(); r != nil {
		r.nodeState(ntf.Node, ntf.State == protocol.NodeDown)
	}
	s.nodeDownInGrace(ntf.Node, ntf.State == protocol.NodeDown)
	switch ntf.State {
	case protocol.NodeDown:
		s.nodeLost(ctx, ntf.Node, "media node "+ntf.Node+" lost: "+ntf.Reason)
	case protocol.NodeUp:
		// A node back up may still host conferences waiting for a restore,
		// and copies restored elsewhere meanwhile (it hung): hear its list
		// now, before the periodic restore pass offers it any, so the first
		// are adopted where they run and the others end, in one command.
		s.tellNode(ntf.Node, protocol.GetConfListCmd{Type: protocol.MAUMCUGetConfListCmd, Delta: true})
	}
}

// nodeLost restores elsewhere every conference running on node, in every
// possible-service store (000 §1.2, §9.4): once the start-up grace is
// over, a service platform's go straight to their new nodes (pending-restore
// on the way, in the same step); the others, and those no offered node has
// room for, become pending-restore for the restore pass. Legacy
// conferences stay where they are (000 §12). It answers how many it took.
func (s *Scheduler) nodeLost(ctx context.Context, node, reason string) int {
	return s.nodesLost(ctx, []string{node}, reason)
}

// nodesLost is nodeLost for several nodes at once (a failed room's): their
// conferences are placed together, so that each target node gets them in
// batches.
func (s *Scheduler) nodesLost(ctx context.Context, nodes []string, reason string) int {
	if s.dead.Load() || !s.lease.held() || len(nodes) == 0 {
		return 0
	}
	t, r := s.currentTerm(), s.recovery()
	var now []lostIn
	total := 0
	for _, in := range s.lostConfs(ctx, nodes, reason) {
		if t != nil && r != nil && graceOver(t) && s.dr.serves(in.w.platform) {
			now = append(now, in)
			continue
		}
		total += s.pendLost(ctx, in.w, in.lost, in.e164s)
	}
	if len(now) > 0 {
		total += s.restoreLost(ctx, t, r, now)
	}
	s.kickRestore()
	return total
}

// graceOver reports whether a term's start-up grace is over.
func graceOver(t *term) bool {
	select {
	case <-t.graceDone:
		return true
	default:
		return false
	}
}

// restoreLost places lost nodes' conferences on the offered nodes, one
// offer for every store and one placement per store, and restores them
// there in batches (restoreBatch); what finds no place waits
// pending-restore.
func (s *Scheduler) restoreLost(ctx context.Context, t *term, r *restorer, todo []lostIn) int {
	// A node lost twice over (its own loss, then its room's) is restored
	// once: what is under way already stays with its first restore.
	kept := todo[:0]
	for _, in := range todo {
		if in.e164s = s.inflight.not(in.e164s); len(in.e164s) > 0 {
			kept = append(kept, in)
		}
	}
	if len(kept) == 0 {
		return 0
	}
	n := 0
	var offer protocol.GetResAck
	rctx, cancel := context.WithTimeout(ctx, s.opts.RMSTimeout)
	err := s.bus.Call(rctx, protocol.SubjectRMS(s.opts.Platform), protocol.GetResReq{Type: protocol.RMSGetResReq, Exclude: s.abnormalRooms()}, &offer)
	cancel()
	if err != nil || len(offer.MCU) == 0 {
		for _, in := range kept {
			s.log.Warn("no media node to restore a lost node's conferences on; they wait pending-restore", "node", in.lost.name(), "platform", in.w.platform, "err", err)
			n += s.pendLost(ctx, in.w, in.lost, in.e164s)
		}
		return n
	}
	for _, in := range kept {
		pl, noRoom := s.placeAll(offer.MCU, in.e164s, func(string) string { return "" })
		s.log.Warn("restoring a lost media node's conferences", "node", in.lost.name(), "platform", in.w.platform, "reason", in.lost.reason, "conferences", len(in.e164s)-len(noRoom), "nodes", len(pl.order))
		n += len(in.e164s) - len(noRoom)
		if len(noRoom) > 0 {
			n += s.pendLost(ctx, in.w, in.lost, noRoom)
		}
		// Under way from now on; the batches go from another goroutine, so
		// that RMS's next notice is heard meanwhile.
		for _, node := range pl.order {
			s.inflight.setMany(pl.placed[node], true)
		}
		t.life.Go(func() { s.dispatch(t, r, in.w, pl, in.lost) })
	}
	return n
}

// pendLost marks conferences running on lost nodes pending-restore, and
// answers how many it marked.
func (s *Scheduler) pendLost(ctx context.Context, w where, lost lostNode, e164s []string) int {
	order, groups := lost.byNode(e164s)
	total := 0
	for _, node := range order {
		moved, skipped, err := w.st.Pend(ctx, node, lost.reason, groups[node], func(int) { s.kickRestore() })
		if err != nil {
			s.log.Error("could not mark a lost node's conferences pending-restore", "node", node, "platform", w.platform, "err", err)
		}
		legacy := 0
		for _, e := range skipped {
			if errors.Is(e, store.ErrLegacy) {
				legacy++
			}
		}
		s.loads.add(node, -len(moved))
		s.log.Warn("conferences pending restore", "node", node, "platform", w.platform, "reason", lost.reason, "conferences", len(moved), "legacy-kept", legacy)
		for _, e := range moved {
			s.notifyCMOf(w.platform, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: e, State: protocol.StatePendingRestore, Node: node, Reason: lost.reason})
		}
		s.m.ops.WithLabelValues("pend", "ok").Add(float64(len(moved)))
		total += len(moved)
	}
	return total
}

// movedOff is what follows conferences moved off lost nodes: they no
// longer count there, and the CM hears they wait for a restore.
func (s *Scheduler) movedOff(w where, lost lostNode, confs []protocol.Conference, legacy int) {
	for i := range confs {
		node := lost.nodeOf(confs[i].E164)
		s.loads.add(node, -1)
		s.notifyCMOf(w.platform, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: confs[i].E164, Domain: confs[i].Domain, State: protocol.StatePendingRestore, Node: node, Reason: lost.reason})
	}
	s.m.ops.WithLabelValues("pend", "ok").Add(float64(len(confs)))
	if legacy > 0 {
		s.log.Warn("legacy conferences stay on their lost node", "node", lost.name(), "conferences", legacy)
	}
}

// handleRoomStates hears PMS's SERVER_ROOM_STATE_NOTIFY.
func (s *Scheduler) handleRoomStates(ctx context.Context, m *bus.Msg) {
	var ntf protocol.ServerRoomStateNtf
	if err := m.Decode(&ntf); err != nil {
		s.log.Warn("bad room state notice", "err", err)
		return
	}
	s.applyRoomStates(ctx, ntf)
}

// applyRoomStates updates the abnormal-room list (000 §1.3): a room that
// fails sends its conferences to be restored in other rooms; a room that
// recovers leaves the list, its conferences stay where they now run.
func (s *Scheduler) applyRoomStates(ctx context.Context, ntf protocol.ServerRoomStateNtf) {
	if ntf.Platform != s.opts.Platform {
		return
	}
	var failed []protocol.RoomInfo
	changed := false
	s.mu.Lock()
	for _, r := range ntf.Rooms {
		old, was := s.abnormal[r.Room]
		switch {
		case r.State == protocol.RoomAbnormal && was:
			s.abnormal[r.Room] = r // an automatic failure an operator confirmed
			changed = changed || old.Manual != r.Manual
		case r.State == protocol.RoomAbnormal && !was:
			s.abnormal[r.Room] = r
			failed = append(failed, r)
			changed = true
		case r.State == protocol.RoomNormal && was:
			delete(s.abnormal, r.Room)
			changed = true
			s.log.Info("server room recovered", "room", r.Room)
		}
	}
	s.mu.Unlock()
	if r := s.recovery(); r != nil && changed {
		r.epoch.Add(1) // reconciliation treats nodes of failed rooms apart
	}
	for _, r := range failed {
		s.roomLost(ctx, r)
	}
}

// roomLost restores elsewhere every conference of a failed room, all its
// nodes' together. Their old nodes are told to release them once they run
// elsewhere, or when they report them.
func (s *Scheduler) roomLost(ctx context.Context, r protocol.RoomInfo) {
	reason := "server room " + r.Room + " failed"
	if r.Reason != "" {
		reason += ": " + r.Reason
	}
	s.log.Warn("server room failed", "room", r.Room, "reason", r.Reason)
	// Every node's conferences together: one offer, one placement, and
	// per target node batches rather than a few per lost node.
	total := s.nodesLost(ctx, s.nodesInRoom(ctx, r.Room), reason)
	s.log.Warn("conferences of the failed room being restored", "room", r.Room, "conferences", total)
}

// nodesInRoom lists the nodes of a room: RMS's list (up and down nodes),
// and the nodes this scheduler heard of.
func (s *Scheduler) nodesInRoom(ctx context.Context, room string) []string {
	var ack protocol.NodeListAck
	rctx, cancel := context.WithTimeout(ctx, s.opts.RMSTimeout)
	err := s.bus.Call(rctx, protocol.SubjectRMS(s.opts.Platform), protocol.Header{Type: protocol.RMSNodeListReq}, &ack)
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		for _, n := range ack.Nodes {
			s.rooms[n.Node] = n.Room
		}
	}
	var out []string
	for node, rm := range s.rooms {
		if rm == room {
			out = append(out, node)
		}
	}
	sort.Strings(out)
	return out
}

// roomAbnormal reports whether a room is in the abnormal list, and whether
// an operator failed it (rather than the loss of all its nodes).
func (s *Scheduler) roomAbnormal(room string) (abnormal, manual bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.abnormal[room]
	return ok, r.Manual
}

// abnormalRooms lists the failed rooms, for GET_RES_REQ's exclusions.
func (s *Scheduler) abnormalRooms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.abnormal))
	for r := range s.abnormal {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}
