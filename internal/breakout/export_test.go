package breakout

import (
	"context"
	"time"

	"github.com/convene/convene/internal/protocol"
)

// Hooks for the external tests (package breakout_test): run operations
// without a WebSocket, and move the service's clock.

// SetClock replaces the service's clock; call it before Start.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

func (s *Service) TestJoin(ctx context.Context, e164 string, id Identity, session string) uint32 {
	return s.exec(ctx, e164, command{cond: "exists", run: func(r rules, st *State) outcome { return r.join(st, id, session) }}).status
}

func (s *Service) TestLeave(ctx context.Context, e164, session string) uint32 {
	return s.exec(ctx, e164, command{cond: "exists", run: func(r rules, st *State) outcome { return r.leave(st, session) }}).status
}

func (s *Service) TestStart(ctx context.Context, e164 string, a Actor, req protocol.BreakoutRoomsStart) uint32 {
	return s.exec(ctx, e164, cmdStart(e164, a, req)).status
}

func (s *Service) TestMove(ctx context.Context, e164 string, a Actor, req protocol.SetUserBreakoutRoom) uint32 {
	return s.exec(ctx, e164, cmdSetRoom(e164, a, req)).status
}

func (s *Service) TestStop(ctx context.Context, e164 string, a Actor, delay uint32) uint32 {
	return s.exec(ctx, e164, cmdStop(e164, a, delay)).status
}

func (s *Service) TestExpire(ctx context.Context, e164 string) { s.expire(ctx, e164) }

// TestMoved handles the news that conference e164 runs on node.
func (s *Service) TestMoved(ctx context.Context, e164, node string) { s.moved(ctx, e164, node) }

func (s *Service) TestRecord(ctx context.Context, e164 string, a Actor, room uint32) uint32 {
	return s.exec(ctx, e164, cmdRecord(e164, a, room)).status
}

func (s *Service) TestSubscribe(ctx context.Context, e164 string, a Actor, req protocol.UserSubscribeInBreakoutRoom) uint32 {
	return s.exec(ctx, e164, cmdSubscribe(e164, a, req)).status
}

func (s *Service) TestMute(ctx context.Context, e164 string, a Actor, req protocol.UserMute) uint32 {
	return s.exec(ctx, e164, cmdMute(e164, a, req)).status
}

func (s *Service) TestAudio(ctx context.Context, e164 string, a Actor, req protocol.UserAudioState) uint32 {
	return s.exec(ctx, e164, cmdAudio(e164, a, req)).status
}

// TestMovedMany handles the news that the conferences run on the nodes
// given, as the queue of conferences this instance does not hold does.
func (s *Service) TestMovedMany(ctx context.Context, moves map[string]string) {
	s.movedMany(ctx, moves)
}

// TestEnded handles the news, heard on the bus, that conference e164 ended.
func (s *Service) TestEnded(e164 string) { s.ended(e164, false) }
