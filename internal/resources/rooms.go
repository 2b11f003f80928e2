package resources

import (
	"context"
	"fmt"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// roomState is a server room and its state. Guarded by Service.mu.
type roomState struct {
	Room
	state string // protocol.RoomNormal or protocol.RoomAbnormal
}

// Rooms lists the platform's rooms in configured order, each with its
// state and its number of live MCU nodes.
func (s *Service) Rooms() []protocol.RoomInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]protocol.RoomInfo, len(s.rooms))
	for i, r := range s.rooms {
		out[i] = protocol.RoomInfo{
			Room: r.Moid, Name: r.Name, Platform: s.opts.Platform, RoomType: r.RoomType(), State: r.state,
		}
	}
	for _, n := range s.order {
		if n.up && n.kind == KindMCU {
			out[n.roomIdx].LiveNodes++
		}
	}
	return out
}

// SetRoomState marks a room normal or abnormal. An abnormal room's nodes
// stay up but are not offered. SERVER_ROOM_STATE_NOTIFY from the platform
// monitor drives it too.
func (s *Service) SetRoomState(room, state string) error {
	if state != protocol.RoomNormal && state != protocol.RoomAbnormal {
		return fmt.Errorf("%w: room %q: got %q", ErrBadRoomState, room, state)
	}
	i, ok := s.roomIdx[room]
	if !ok {
		return fmt.Errorf("%w: %q is not a server room of platform %q", ErrUnknownRoom, room, s.opts.Platform)
	}
	s.mu.Lock()
	was := s.rooms[i].state
	s.rooms[i].state = state
	s.mu.Unlock()
	if was != state {
		s.log.Warn("server room "+state, "room", room, "was", was)
	}
	return nil
}

func (s *Service) handleServerRoomState(_ context.Context, m *bus.Msg) {
	var ntf protocol.ServerRoomStateNtf
	if err := m.Decode(&ntf); err != nil {
		s.log.Warn("rms: unreadable server room notice", "err", err)
		return
	}
	if ntf.Platform != s.opts.Platform {
		s.log.Debug("rms: server room notice for another platform", "for", ntf.Platform)
		return
	}
	for _, r := range ntf.Rooms {
		if err := s.SetRoomState(r.Room, r.State); err != nil {
			s.log.Warn("rms ignored a server room state", "room", r.Room, "state", r.State, "err", err)
		}
	}
}

func (s *Service) handleRoomList(_ context.Context, m *bus.Msg) {
	if err := m.Respond(protocol.RoomListAck{Type: protocol.RMSRoomListAck, Rooms: s.Rooms()}); err != nil {
		s.log.Warn("rms could not answer a room list request", "err", err)
	}
}
