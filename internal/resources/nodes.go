package resources

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// Node kinds.
const (
	KindMCU = "mcu"
	KindVRS = "vrs"
	KindMPS = "mps"
)

// Reasons given in RMS_NODE_STATE_NTF.
const (
	ReasonRegistered   = "registered"
	ReasonResumed      = "heartbeat resumed"
	ReasonRestarted    = "restarted"
	ReasonUnregistered = "unregistered"
	// ReasonConnLost: the node's bus connection ended and neither came
	// back nor carried a beat within Options.DisconnectGrace.
	ReasonConnLost = "bus connection lost"
	// A down notice after silence says "missed N heartbeats".
)

// node is one media node as RMS knows it. Guarded by Service.mu.
type node struct {
	id, ip, pid, room, kind string
	roomIdx                 int
	legacy                  bool
	capacity, confs         int
	sip                     string // the node's SIP contact, if any
	up                      bool
	lastBeat, registered    time.Time
	// graceUntil, when set, is when the node is down unless it reconnects
	// or beats first: its bus connection ended.
	graceUntil time.Time
}

func (n *node) free() int { return n.capacity - n.confs }

func (n *node) info() protocol.NodeInfo {
	state := protocol.NodeDown
	if n.up {
		state = protocol.NodeUp
	}
	return protocol.NodeInfo{
		Node: n.id, IP: n.ip, PID: n.pid, Room: n.room, Kind: n.kind, State: state,
		Capacity: n.capacity, Confs: n.confs, Legacy: n.legacy,
		LastBeatMs: n.lastBeat.UnixMilli(), RegisteredAtM: n.registered.UnixMilli(), SIP: n.sip,
	}
}

func (n *node) server() protocol.Server {
	return protocol.Server{Node: n.id, IP: n.ip, PID: n.pid, Room: n.room, Confs: n.confs, Capacity: n.capacity}
}

func (n *node) notice(state, reason string) protocol.NodeStateNtf {
	return protocol.NodeStateNtf{
		Type: protocol.RMSNodeStateNtf, Node: n.id, IP: n.ip, PID: n.pid, Room: n.room,
		State: state, Reason: reason, Legacy: n.legacy,
	}
}

// registration is what a register request or a heartbeat says of a node.
type registration struct {
	id, ip, pid, room, platform, kind string
	sip                               string
	legacy                            bool
	capacity, confs                   int
	beat                              bool // a heartbeat, which reports confs
}

// validate checks a registration against the platform; the error's
// sentence is meant for the node's operator.
func (s *Service) validate(r *registration) error {
	if r.kind == "" {
		r.kind = KindMCU
	}
	bad := func(format string, args ...any) error {
		return &reasonError{kind: ErrBadNode, msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case !protocol.ValidToken(r.id):
		return bad("node id %q must be 1-64 letters, digits, '-' or '_'", r.id)
	case r.platform != s.opts.Platform:
		return bad("node %s registered for platform %q on the bus of platform %q; fix the node's platformmoid", r.id, r.platform, s.opts.Platform)
	case r.kind != KindMCU && r.kind != KindVRS && r.kind != KindMPS:
		return bad("node %s: kind %q must be mcu, vrs or mps", r.id, r.kind)
	case r.capacity <= 0:
		return bad("node %s: capacity %d must be at least 1 conference", r.id, r.capacity)
	case r.confs < 0:
		return bad("node %s: conference count %d is negative", r.id, r.confs)
	}
	if _, ok := s.roomIdx[r.room]; !ok {
		moids := make([]string, len(s.opts.Rooms))
		for i, room := range s.opts.Rooms {
			moids[i] = room.Moid
		}
		return &reasonError{kind: ErrUnknownRoom, msg: fmt.Sprintf(
			"node %s: room %q is not a server room of platform %q (its rooms: %s); fix the node's roommoid",
			r.id, r.room, s.opts.Platform, strings.Join(moids, ", "))}
	}
	return nil
}

func (s *Service) handleRegister(_ context.Context, m *bus.Msg) {
	var req protocol.RegisterReq
	if err := m.Decode(&req); err != nil {
		s.log.Warn("rms: unreadable register request", "err", err)
		_ = m.Nack(protocol.RMSRegisterNack, protocol.ErrBadRequest, "MCU_RMS_REGISTER_REQ is not a valid message: "+err.Error())
		return
	}
	r := registration{
		id: req.Node, ip: req.IP, pid: req.PID, room: req.Room, platform: req.Platform,
		kind: req.Kind, legacy: req.Legacy, capacity: req.Capacity, sip: req.SIP,
	}
	if err := s.validate(&r); err != nil {
		code := protocol.ErrBadRequest
		if errors.Is(err, ErrUnknownRoom) {
			code = protocol.ErrUnknownRoom
		}
		s.log.Warn("rms refused a node", "node", req.Node, "ip", req.IP, "code", code, "err", err)
		_ = m.Nack(protocol.RMSRegisterNack, code, err.Error())
		return
	}
	s.learn(r, time.Now())
	if err := m.Respond(protocol.RegisterAck{
		Type:                protocol.RMSRegisterAck,
		HeartbeatIntervalMs: s.opts.HeartbeatInterval.Milliseconds(),
		ConfListIntervalMs:  s.opts.ConfListInterval.Milliseconds(),
	}); err != nil {
		s.log.Warn("rms could not answer a register request", "node", r.id, "err", err)
	}
}

func (s *Service) handleHeartbeat(_ context.Context, m *bus.Msg) {
	var hb protocol.HeartbeatNtf
	if err := m.Decode(&hb); err != nil {
		s.log.Warn("rms: unreadable heartbeat", "err", err)
		return
	}
	r := registration{
		id: hb.Node, ip: hb.IP, pid: hb.PID, room: hb.Room, platform: hb.Platform,
		kind: hb.Kind, legacy: hb.Legacy, capacity: hb.Capacity, confs: hb.Confs, beat: true, sip: hb.SIP,
	}
	if err := s.validate(&r); err != nil {
		s.log.Warn("rms ignored a heartbeat", "node", hb.Node, "ip", hb.IP, "err", err)
		return
	}
	s.learn(r, time.Now())
}

func (s *Service) handleUnregister(_ context.Context, m *bus.Msg) {
	var req protocol.RegisterReq
	if err := m.Decode(&req); err != nil {
		s.log.Warn("rms: unreadable unregister notice", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[req.Node]
	switch {
	case !ok:
		s.log.Debug("rms: unregister of an unknown node", "node", req.Node)
		return
	case n.pid != req.PID:
		// A late notice from a process the node has replaced.
		s.log.Warn("rms ignored a stale unregister", "node", n.id, "pid", req.PID, "current_pid", n.pid)
		return
	}
	s.remove(n)
	if n.up {
		s.enqueue(n.notice(protocol.NodeDown, ReasonUnregistered))
	}
}

// learn applies a valid registration or beat received at now, and queues
// the transitions it causes.
func (s *Service) learn(r registration, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, known := s.nodes[r.id]
	switch {
	case !known:
		n = &node{id: r.id, registered: now}
		s.apply(n, r)
		s.nodes[n.id] = n
		s.order = append(s.order, n)
		s.sortOrder()
		s.enqueue(n.notice(protocol.NodeUp, ReasonRegistered))
	case n.pid != r.pid:
		// The node restarted: its old process and conferences are gone.
		if n.up {
			s.enqueue(n.notice(protocol.NodeDown, ReasonRestarted))
		}
		n.registered, n.confs = now, 0
		s.apply(n, r)
		s.enqueue(n.notice(protocol.NodeUp, ReasonRestarted))
	case !n.up:
		s.apply(n, r)
		reason := ReasonResumed
		if !r.beat {
			reason = ReasonRegistered
		}
		s.enqueue(n.notice(protocol.NodeUp, reason))
	default:
		s.apply(n, r)
	}
	// A beat or a registration is proof of a working connection.
	n.up, n.lastBeat, n.graceUntil = true, now, time.Time{}
}

// apply copies a registration into n. A known node that changed rooms
// is moved in order.
func (s *Service) apply(n *node, r registration) {
	n.pid, n.ip, n.kind, n.legacy, n.capacity, n.sip = r.pid, r.ip, r.kind, r.legacy, r.capacity, r.sip
	if r.beat {
		n.confs = r.confs
	}
	if n.room == r.room {
		return
	}
	moved := n.room != ""
	if moved {
		s.log.Info("media node moved rooms", "node", n.id, "from", n.room, "to", r.room)
	}
	n.room, n.roomIdx = r.room, s.roomIdx[r.room]
	if moved {
		s.sortOrder()
	}
}

func (s *Service) remove(n *node) {
	delete(s.nodes, n.id)
	s.order = slices.DeleteFunc(s.order, func(o *node) bool { return o == n })
}

// sortOrder keeps each room's nodes together, so that an offer walks them
// room by room.
func (s *Service) sortOrder() {
	slices.SortFunc(s.order, func(a, b *node) int {
		return cmp.Or(cmp.Compare(a.roomIdx, b.roomIdx), strings.Compare(a.id, b.id))
	})
}

// Nodes lists every known node, up and down, sorted by id.
func (s *Service) Nodes() []protocol.NodeInfo {
	s.mu.RLock()
	out := make([]protocol.NodeInfo, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, n.info())
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b protocol.NodeInfo) int { return strings.Compare(a.Node, b.Node) })
	return out
}

func (s *Service) handleNodeList(_ context.Context, m *bus.Msg) {
	s.awaitFresh()
	if err := m.Respond(protocol.NodeListAck{Type: protocol.RMSNodeListAck, Nodes: s.Nodes()}); err != nil {
		s.log.Warn("rms could not answer a node list request", "err", err)
	}
}
