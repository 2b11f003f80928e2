package platform

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// Reasons a room gives for being abnormal.
const (
	// ReasonOperator is a manual failure's reason when the operator gave
	// none.
	ReasonOperator = "failed by an operator"
	// ReasonNodesDown is an automatic failure's reason.
	ReasonNodesDown = "every media node of the room is down"
	// MaxReasonLen bounds the reason an operator gives, in bytes.
	MaxReasonLen = 256
)

// room is a server room and its state. Guarded by Service.mu.
//
// The state machine: normal → abnormal automatically (every known MCU node
// of the room down) or by hand; abnormal → normal automatically (a node
// came back) only when the failure was automatic, by hand always.
//
// The automatic rule is applied only when a node of the room changes (and
// to every room once, when RMS's first node list arrives), never on its
// own. So a room recovered by hand while its nodes are all down stays
// normal until the next node transition in it re-evaluates it: the
// operator knows something PMS does not, and only a newer fact about the
// room's nodes overrides the operator.
type room struct {
	Room
	state  string // protocol.RoomNormal or protocol.RoomAbnormal
	manual bool   // abnormal because an operator said so
	reason string // why it is abnormal; empty when normal
	since  time.Time
}

func (r *room) fail(reason string, manual bool, now time.Time) {
	r.state, r.manual, r.reason, r.since = protocol.RoomAbnormal, manual, reason, now
}

func (r *room) recover(now time.Time) {
	r.state, r.manual, r.reason, r.since = protocol.RoomNormal, false, "", now
}

// transition is a change of a room's state, announced once mu is released.
type transition struct {
	room, state, reason string
	manual              bool
	cause               string // who changed it: "operator", "nodes", "caller"
	live, known         int    // the room's MCU nodes when it changed
}

func (s *Service) transition(r *room, cause string) transition {
	known, live := s.count(r.Moid)
	return transition{room: r.Moid, state: r.state, reason: r.reason, manual: r.manual, cause: cause, live: live, known: known}
}

// Rooms lists the platform's rooms in configured order, each with its
// state and the number of its MCU nodes PMS knows to be up.
func (s *Service) Rooms() []protocol.RoomInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := make(map[string]int, len(s.rooms))
	for _, n := range s.nodes {
		if n.up && n.mcu() {
			live[n.room]++
		}
	}
	out := make([]protocol.RoomInfo, len(s.rooms))
	for i, r := range s.rooms {
		out[i] = protocol.RoomInfo{
			Room: r.Moid, Name: r.Name, Platform: s.opts.Platform, RoomType: r.RoomType(), State: r.state,
			LiveNodes: live[r.Moid], Reason: r.reason, Manual: r.manual, SinceMs: r.since.UnixMilli(),
		}
	}
	return out
}

func (s *Service) roomNotice(typ string) protocol.ServerRoomStateNtf {
	return protocol.ServerRoomStateNtf{Type: typ, Platform: s.opts.Platform, Rooms: s.Rooms()}
}

// SetRoom fails (state abnormal) or recovers (state normal) a room.
//
// With manual set it is an operator's decision: a manual failure stays
// until a manual recovery, and a manual recovery is allowed whatever failed
// the room. Without it, it is an automatic one: it cannot recover a room an
// operator failed (ErrManualFailure), and an automatically failed room
// recovers by itself when one of its nodes comes up. An empty reason takes
// ReasonOperator or ReasonNodesDown. Setting a room to the state it has is
// a no-op (a manual failure keeps its first reason). A change is broadcast
// before SetRoom returns.
func (s *Service) SetRoom(moid, state, reason string, manual bool) error {
	ts, err := s.setRoom(moid, state, reason, manual, time.Now())
	if err != nil {
		return err
	}
	s.announce(ts, true)
	return nil
}

func (s *Service) setRoom(moid, state, reason string, manual bool, now time.Time) ([]transition, error) {
	i, ok := s.roomIdx[moid]
	switch {
	case !ok:
		return nil, reasonf(ErrUnknownRoom, "%q is not a server room of platform %q (its rooms: %s); check the room moid",
			moid, s.opts.Platform, s.roomList())
	case state != protocol.RoomNormal && state != protocol.RoomAbnormal:
		return nil, reasonf(ErrBadRoomState, "room %q: state %q must be %q (recover) or %q (fail)",
			moid, state, protocol.RoomNormal, protocol.RoomAbnormal)
	case len(reason) > MaxReasonLen:
		return nil, reasonf(ErrBadReason, "room %q: the reason is %d bytes; keep it to %d", moid, len(reason), MaxReasonLen)
	}
	reason = strings.TrimSpace(reason)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &s.rooms[i]
	cause := "caller"
	switch {
	case state == protocol.RoomAbnormal && manual:
		if r.state == protocol.RoomAbnormal && r.manual {
			return nil, nil
		}
		r.fail(cmp.Or(reason, ReasonOperator), true, now)
		cause = "operator"
	case state == protocol.RoomAbnormal:
		if r.state == protocol.RoomAbnormal {
			return nil, nil
		}
		r.fail(cmp.Or(reason, ReasonNodesDown), false, now)
	case r.state == protocol.RoomNormal:
		return nil, nil
	case manual:
		r.recover(now)
		cause = "operator"
	case r.manual:
		return nil, reasonf(ErrManualFailure, "room %q was failed by an operator (%s); only an operator recovers it",
			moid, r.reason)
	default:
		r.recover(now)
	}
	return []transition{s.transition(r, cause)}, nil
}

// evaluate applies the automatic rule to room i after a node transition in
// it; the caller holds mu.
func (s *Service) evaluate(i int, now time.Time) (transition, bool) {
	r := &s.rooms[i]
	if s.opts.DisableAutoRoomFailure || !s.synced {
		return transition{}, false
	}
	known, live := s.count(r.Moid)
	switch {
	case r.state == protocol.RoomNormal && known > 0 && live == 0:
		r.fail(ReasonNodesDown, false, now)
	case r.state == protocol.RoomAbnormal && !r.manual && live > 0:
		r.recover(now)
	default:
		return transition{}, false
	}
	return s.transition(r, "nodes"), true
}

// reevaluate evaluates the rooms named (known ones, once each, in
// configured order); the caller holds mu.
func (s *Service) reevaluate(now time.Time, moids map[string]bool) []transition {
	var ts []transition
	for i := range s.rooms {
		if !moids[s.rooms[i].Moid] {
			continue
		}
		if t, ok := s.evaluate(i, now); ok {
			ts = append(ts, t)
		}
	}
	return ts
}

// count says how many MCU nodes of a room PMS knows and how many are up;
// the caller holds mu.
func (s *Service) count(moid string) (known, live int) {
	for _, n := range s.nodes {
		if n.room == moid && n.mcu() {
			known++
			if n.up {
				live++
			}
		}
	}
	return known, live
}

// announce logs transitions, saves the operators' failures when asked to,
// and broadcasts the new state. The caller holds no lock.
func (s *Service) announce(ts []transition, persist bool) {
	if len(ts) == 0 {
		return
	}
	for _, t := range ts {
		msg := "server room recovered"
		if t.state == protocol.RoomAbnormal {
			msg = "server room failed"
		}
		s.log.Info(msg, "room", t.room, "by", t.cause, "manual", t.manual,
			"reason", t.reason, "live_nodes", t.live, "known_nodes", t.known)
	}
	if persist {
		s.save()
	}
	s.broadcast()
}

func (s *Service) roomList() string {
	moids := make([]string, len(s.opts.Rooms))
	for i, r := range s.opts.Rooms {
		moids[i] = r.Moid
	}
	return strings.Join(moids, ", ")
}

func (s *Service) handleRoomState(_ context.Context, m *bus.Msg) {
	if err := m.Respond(s.roomNotice(protocol.ServerRoomStateNt)); err != nil {
		s.log.Warn("pms could not answer a room state request", "err", err)
	}
}

func (s *Service) handleRoomSet(_ context.Context, m *bus.Msg) {
	var req protocol.ServerRoomSetReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(protocol.ServerRoomSetNack, protocol.ErrBadRequest, "SERVER_ROOM_SET_REQ is not a valid message: "+err.Error())
		return
	}
	if err := s.SetRoom(req.Room, req.State, req.Reason, true); err != nil {
		code := protocol.ErrBadRequest
		if errors.Is(err, ErrUnknownRoom) {
			code = protocol.ErrUnknownRoom
		}
		s.log.Warn("pms refused a room change", "room", req.Room, "state", req.State, "code", code, "err", err)
		_ = m.Nack(protocol.ServerRoomSetNack, code, err.Error())
		return
	}
	if err := m.Respond(s.roomNotice(protocol.ServerRoomSetAck)); err != nil {
		s.log.Warn("pms could not answer a room change", "room", req.Room, "err", err)
	}
}
