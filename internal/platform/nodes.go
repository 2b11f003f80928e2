package platform

import (
	"context"
	"fmt"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// kindMCU is RMS's kind for a media node that hosts conferences; only those
// decide whether a room is alive.
const kindMCU = "mcu"

// node is a media node as PMS knows it from RMS. Guarded by Service.mu.
//
// PMS never forgets a node: a room whose nodes all went away has still had
// them, and stays failed until one comes back.
type node struct {
	id, room string
	// kind is empty until RMS's node list says, because notices do not
	// carry it. A node of unknown kind counts as an MCU: taking a VRS for
	// an MCU delays a room's automatic failure by one node-list round
	// trip; the other way round would fail a room that is alive.
	kind string
	up   bool
	gen  uint64    // Service.gen when a notice last set it
	gone time.Time // since when RMS's lists leave it out; zero while listed
}

func (n *node) mcu() bool { return n.kind == "" || n.kind == kindMCU }

// handleNodeState applies RMS_NODE_STATE_NTF. Notices of rooms that are not
// the platform's are ignored.
func (s *Service) handleNodeState(_ context.Context, m *bus.Msg) {
	var ntf protocol.NodeStateNtf
	if err := m.Decode(&ntf); err != nil {
		s.log.Warn("pms: unreadable node notice", "err", err)
		return
	}
	if _, ok := s.roomIdx[ntf.Room]; !ok {
		s.log.Debug("pms ignored a node notice for a room of another platform", "node", ntf.Node, "room", ntf.Room)
		return
	}
	if ntf.Node == "" || (ntf.State != protocol.NodeUp && ntf.State != protocol.NodeDown) {
		s.log.Warn("pms ignored a node notice", "node", ntf.Node, "room", ntf.Room, "state", ntf.State)
		return
	}
	ts, unknown := s.applyNotice(ntf, time.Now())
	if unknown {
		s.askResync()
	}
	s.announce(ts, false)
}

// applyNotice records a node's new state and re-evaluates the rooms it
// left and joined. It reports whether the node was new to PMS.
func (s *Service) applyNotice(ntf protocol.NodeStateNtf, now time.Time) ([]transition, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	n, known := s.nodes[ntf.Node]
	if !known {
		n = &node{id: ntf.Node}
		s.nodes[n.id] = n
	}
	up := ntf.State == protocol.NodeUp
	changed := !known || n.up != up || n.room != ntf.Room
	affected := map[string]bool{n.room: true, ntf.Room: true}
	n.room, n.up, n.gen, n.gone = ntf.Room, up, s.gen, time.Time{}
	if !changed || !n.mcu() {
		return nil, !known
	}
	return s.reevaluate(now, affected), !known
}

// syncNodes reads RMS's node list and corrects the table with it.
func (s *Service) syncNodes(ctx context.Context) error {
	s.mu.Lock()
	asked := s.gen
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.opts.NodeListTimeout)
	defer cancel()
	subject := protocol.SubjectRMS(s.opts.Platform)
	var ack protocol.NodeListAck
	if err := s.bus.Call(ctx, subject, protocol.Header{Type: protocol.RMSNodeListReq}, &ack); err != nil {
		return fmt.Errorf("pms %s: RMS_NODELIST_REQ on %s: %w", s.opts.Platform, subject, err)
	}
	ts, dropped := s.applyNodeList(ack.Nodes, asked, time.Now())
	for _, n := range dropped {
		s.log.Info("pms takes a node that RMS no longer lists as down", "node", n)
	}
	s.announce(ts, false)
	return nil
}

// applyNodeList reconciles the table with RMS's list, asked for when gen
// was asked. A node a notice changed since then keeps what the notice said:
// the notice is newer than the list, or as new. A node the list leaves out
// is taken as down only once it has been left out for ResyncInterval: an
// RMS that just restarted lists only the nodes that beat since, and the
// others come back with their next heartbeat. The first list re-evaluates
// every room, since PMS fails no room by itself before it has seen one. It
// returns the transitions and the nodes it took as down for being left out.
func (s *Service) applyNodeList(list []protocol.NodeInfo, asked uint64, now time.Time) (ts []transition, dropped []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	affected := make(map[string]bool)
	if !s.synced {
		s.synced = true
		for _, r := range s.rooms {
			affected[r.Moid] = true
		}
	}
	listed := make(map[string]bool, len(list))
	for _, in := range list {
		if _, ok := s.roomIdx[in.Room]; !ok {
			continue
		}
		listed[in.Node] = true
		n, known := s.nodes[in.Node]
		if !known {
			n = &node{id: in.Node}
			s.nodes[n.id] = n
		}
		wasMCU := n.mcu()
		n.kind, n.gone = in.Kind, time.Time{}
		if wasMCU != n.mcu() {
			affected[n.room] = true
		}
		if known && n.gen > asked {
			continue
		}
		up := in.State == protocol.NodeUp
		if n.mcu() && (!known || n.up != up || n.room != in.Room) {
			affected[n.room], affected[in.Room] = true, true
		}
		n.room, n.up = in.Room, up
	}
	for _, n := range s.nodes {
		switch {
		case listed[n.id] || n.gen > asked:
		case n.gone.IsZero():
			n.gone = now
		case n.up && now.Sub(n.gone) >= s.opts.ResyncInterval:
			n.up = false
			dropped = append(dropped, n.id)
			if n.mcu() {
				affected[n.room] = true
			}
		}
	}
	return s.reevaluate(now, affected), dropped
}
