package breakout

import (
	"context"

	"github.com/convene/convene/internal/protocol"
)

// The commands of the BMS protocol, shared by the WebSocket clients
// (ws.go) and the REST mirror (rest.go). Each names the operation, the
// store's condition on the conference, and the notify a requester gets
// when something outside the operation fails.

func cmdStart(e164 string, a Actor, req protocol.BreakoutRoomsStart) command {
	return command{
		cond: "running",
		run:  func(r rules, st *State) outcome { return r.start(st, a, req) },
		refuse: func(status uint32, msg string) any {
			return protocol.BreakoutRoomsStartNotify{
				Type: protocol.BMSBreakoutRoomsStartNotify, StatusCode: status, Message: msg, ConfID: e164,
				UserID: a.UserID, Extend: req.Extend, RoomInfos: req.RoomInfos,
			}
		},
	}
}

func cmdSetRoom(e164 string, a Actor, req protocol.SetUserBreakoutRoom) command {
	return command{
		cond: "exists",
		run:  func(r rules, st *State) outcome { return r.setRoom(st, a, req) },
		refuse: func(status uint32, msg string) any {
			return protocol.SetUserBreakoutRoomNotify{
				Type: protocol.BMSSetUserBreakoutRoomNotify, StatusCode: status, Message: msg, ConfID: e164,
				OperatorID: a.UserID, DestItem: req.DestItem,
			}
		},
	}
}

func cmdStop(e164 string, a Actor, delay uint32) command {
	return command{
		cond: "exists",
		run:  func(r rules, st *State) outcome { return r.stop(st, a, delay) },
		refuse: func(status uint32, msg string) any {
			return protocol.BreakoutRoomsStopNotify{
				Type: protocol.BMSBreakoutRoomsStopNotify, StatusCode: status, Message: msg, ConfID: e164,
				UserID: a.UserID, DelayTime: delay,
			}
		},
	}
}

func cmdRecord(e164 string, a Actor, roomID uint32) command {
	return command{
		cond: "exists",
		run:  func(r rules, st *State) outcome { return r.record(st, a, roomID) },
		refuse: func(status uint32, msg string) any {
			return protocol.RecordBreakoutRoomNotify{
				Type: protocol.AudioRecordBreakoutRoomNotify, StatusCode: status, Message: msg, ConfID: e164, RoomID: roomID,
			}
		},
	}
}

func cmdSubscribe(e164 string, a Actor, req protocol.UserSubscribeInBreakoutRoom) command {
	return command{
		cond: "exists",
		run:  func(r rules, st *State) outcome { return r.subscribe(st, a, req) },
		refuse: func(status uint32, msg string) any {
			return protocol.UserSubscribeInBreakoutRoomNotify{
				Type: protocol.AudioUserSubscribeInBreakoutNotify, StatusCode: status, Message: msg, ConfID: e164,
				User: req.User, SubscribeInfos: req.SubscribeInfos,
			}
		},
	}
}

func cmdMute(e164 string, a Actor, req protocol.UserMute) command {
	return command{
		cond: "exists",
		run:  func(r rules, st *State) outcome { return r.mute(st, a, req) },
		refuse: func(status uint32, msg string) any {
			return protocol.UserMuteNotify{
				Type: protocol.AudioUserMuteNotify, StatusCode: status, Message: msg, ConfID: e164, OperatorID: a.UserID,
				UserID: req.UserID, Mode: req.Mode, GroupID: req.GroupID, UserInfos: []protocol.UserAudioInfo{},
			}
		},
	}
}

func cmdAudio(e164 string, a Actor, req protocol.UserAudioState) command {
	return command{
		cond: "exists",
		run:  func(r rules, st *State) outcome { return r.audioState(st, a, req) },
		refuse: func(status uint32, msg string) any {
			return protocol.UserAudioStateNotify{
				Type: protocol.AudioUserAudioStateNotify, StatusCode: status, Message: msg, ConfID: e164, OperatorID: a.UserID,
				UserInfos: []protocol.UserAudioInfo{{UserID: req.UserID, AudioState: req.AudioState}},
			}
		},
	}
}

// list reads the plan for userID: BMS_CONF_GET_BREAKOUT_ROOMS_LIST_NOTIFY,
// with the state's version for a client of the compact form.
func (s *Service) list(ctx context.Context, e164 string, userID uint32, withVersion bool) protocol.GetBreakoutRoomsListNotify {
	var n protocol.GetBreakoutRoomsListNotify
	err := s.read(ctx, e164, func(st *State, _ *Plan) {
		n = s.rules().list(st, userID)
		if withVersion {
			n.Version = st.Version
		}
	})
	if err != nil {
		s.log.Warn("breakout list not read", "e164", e164, "err", err)
		return protocol.GetBreakoutRoomsListNotify{
			Type: protocol.BMSGetBreakoutRoomsListNotify, StatusCode: protocol.BreakoutInternal, ConfID: e164, UserID: userID,
			Message: "the breakout state could not be read: retry later", RoomInfos: []protocol.BreakoutRoomInfo{},
		}
	}
	return n
}
