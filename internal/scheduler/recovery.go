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
	// offered; up again, it is offered afresh, silent before or not.
	s.loads.heard(ntf.Node)
	switch ntf.State {
	case protocol.NodeDown:
		s.nodeLost(ctx, ntf.Node, "media node "+ntf.Node+" lost: "+ntf.Reason)
	case protocol.NodeUp:
		// A node back up may still host conferences waiting for a restore:
		// hear its list before the periodic restore pass offers it any, so
		// they are adopted where they run rather than restored onto it.
		s.tellNode(ntf.Node, protocol.GetConfListCmd{Type: protocol.MAUMCUGetConfListCmd})
	}
}

// nodeLost marks every conference running on node pending-restore, in
// every possible-service store, then restores them. Legacy conferences stay
// where they are (000 §12). It answers how many it marked.
func (s *Scheduler) nodeLost(ctx context.Context, node, reason string) int {
	if s.dead.Load() || !s.holdsLease() {
		return 0
	}
	total := 0
	for _, w := range s.stores() {
		e164s, err := w.st.NodeConferences(ctx, node)
		if err != nil {
			s.log.Error("could not read a lost node's conferences; the periodic checks will", "node", node, "platform", w.platform, "err", err)
			continue
		}
		if len(e164s) == 0 {
			continue
		}
		moved, skipped, err := w.st.Pend(ctx, node, reason, e164s, func(int) { s.kickRestore() })
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
		s.log.Warn("conferences pending restore", "node", node, "platform", w.platform, "reason", reason, "conferences", len(moved), "legacy-kept", legacy)
		for _, e := range moved {
			s.notifyCMOf(w.platform, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: e, State: protocol.StatePendingRestore, Node: node, Reason: reason})
		}
		s.m.ops.WithLabelValues("pend", "ok").Add(float64(len(moved)))
		total += len(moved)
	}
	s.kickRestore()
	return total
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
	s.mu.Lock()
	for _, r := range ntf.Rooms {
		_, was := s.abnormal[r.Room]
		switch {
		case r.State == protocol.RoomAbnormal && was:
			s.abnormal[r.Room] = r // an automatic failure an operator confirmed
		case r.State == protocol.RoomAbnormal && !was:
			s.abnormal[r.Room] = r
			failed = append(failed, r)
		case r.State == protocol.RoomNormal && was:
			delete(s.abnormal, r.Room)
			s.log.Info("server room recovered", "room", r.Room)
		}
	}
	s.mu.Unlock()
	for _, r := range failed {
		s.roomLost(ctx, r)
	}
}

// roomLost restores elsewhere every conference of a failed room. Their old
// nodes are told to release them when they report them.
func (s *Scheduler) roomLost(ctx context.Context, r protocol.RoomInfo) {
	reason := "server room " + r.Room + " failed"
	if r.Reason != "" {
		reason += ": " + r.Reason
	}
	s.log.Warn("server room failed", "room", r.Room, "reason", r.Reason)
	total := 0
	for _, node := range s.nodesInRoom(ctx, r.Room) {
		total += s.nodeLost(ctx, node, reason)
	}
	s.log.Warn("conferences of the failed room pending restore", "room", r.Room, "conferences", total)
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
