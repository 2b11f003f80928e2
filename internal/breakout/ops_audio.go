package breakout

import (
	"slices"

	"github.com/convene/convene/internal/protocol"
)

// record is AUDIO_RECORD_BREAKOUT_ROOM: the recording takes a room's
// audio (room 0: the main room). A breakout room can be recorded only
// while the rooms run; their end gives the recording back to the main room.
func (r rules) record(st *State, a Actor, roomID uint32) outcome {
	fail := func(status uint32, format string, args ...any) outcome {
		return refused(status, protocol.RecordBreakoutRoomNotify{
			Type: protocol.AudioRecordBreakoutRoomNotify, StatusCode: status, Message: msgf(format, args...),
			ConfID: st.E164, RoomID: roomID,
		})
	}
	room := roomID
	if room == 0 {
		room = MainRoom
	}
	switch _, known := st.room(room); {
	case !a.Host:
		return fail(protocol.BreakoutNotHost, "only the host chooses the room to record")
	case !known:
		return fail(protocol.BreakoutUnknownRoom, "room %d is not in the plan", room)
	case room != MainRoom && !st.Meta.Active:
		return fail(protocol.BreakoutNotActive, "breakout rooms are not running: only the main room can be recorded")
	}
	st.Meta.Record = room
	if room == MainRoom {
		st.Meta.Record = 0
	}
	return ok(protocol.RecordBreakoutRoomNotify{Type: protocol.AudioRecordBreakoutRoomNotify, ConfID: st.E164, RoomID: room})
}

// subscribe is AUDIO_USER_SUBSCRIBE_IN_BREAKOUT_ROOM: the full list of
// other rooms a user hears or speaks in (the teacher listening to rooms
// from the main room). Its own room needs no subscription and is dropped.
func (r rules) subscribe(st *State, a Actor, req protocol.UserSubscribeInBreakoutRoom) outcome {
	fail := func(status uint32, format string, args ...any) outcome {
		return refused(status, protocol.UserSubscribeInBreakoutRoomNotify{
			Type: protocol.AudioUserSubscribeInBreakoutNotify, StatusCode: status, Message: msgf(format, args...),
			ConfID: st.E164, User: req.User, SubscribeInfos: req.SubscribeInfos,
		})
	}
	_, u := st.online(req.User)
	switch {
	case u == nil:
		return fail(protocol.BreakoutUnknownUser, "user %d is not in the conference", req.User)
	case !a.Host && u.UserID != a.UserID:
		return fail(protocol.BreakoutNotHost, "only the host sets another user's subscriptions")
	case len(req.SubscribeInfos) > 0 && !st.Meta.Active:
		return fail(protocol.BreakoutNotActive, "breakout rooms are not running: there is no other room to subscribe to")
	case len(req.SubscribeInfos) > 0 && u.Phone():
		return fail(protocol.BreakoutPhoneMainOnly, "user %d is on the phone: phone users hear the main room only", u.UserID)
	}
	var subs []Sub
	for _, si := range req.SubscribeInfos {
		switch _, known := st.room(si.RoomID); {
		case !known:
			return fail(protocol.BreakoutUnknownRoom, "room %d is not in the plan", si.RoomID)
		case si.Privilege == 0 || si.Privilege&^privAll != 0:
			return fail(protocol.BreakoutBadRequest, "room %d: privilege is listen 0x01, speak 0x02 or both, not %#x", si.RoomID, si.Privilege)
		case slices.ContainsFunc(subs, func(s Sub) bool { return s.Room == si.RoomID }):
			return fail(protocol.BreakoutBadRequest, "room %d is given twice", si.RoomID)
		}
		if si.RoomID != u.Current {
			subs = append(subs, Sub{Room: si.RoomID, Privilege: si.Privilege})
		}
	}
	slices.SortFunc(subs, func(x, y Sub) int { return cmpU32(x.Room, y.Room) })
	after := *u
	after.Subs = subs
	if r.wouldExceed(st, u, after) {
		return fail(protocol.BreakoutSpeakerLimit, "the main room has %d speakers already: subscribe to it to listen only", r.speakerLimit)
	}
	u.Subs = subs
	return ok(protocol.UserSubscribeInBreakoutRoomNotify{
		Type: protocol.AudioUserSubscribeInBreakoutNotify, ConfID: st.E164, User: u.UserID, SubscribeInfos: subInfos(subs),
	})
}

func subInfos(subs []Sub) []protocol.BreakoutRoomSubscribeInfo {
	out := make([]protocol.BreakoutRoomSubscribeInfo, 0, len(subs))
	for _, s := range subs {
		out = append(out, protocol.BreakoutRoomSubscribeInfo{RoomID: s.Room, Privilege: s.Privilege})
	}
	return out
}

// mute is AUDIO_USER_MUTE. Mute-all and unmute-all act on the main room
// only (the other rooms are just told); the group modes act on room
// groupID; muting a room spares the host who asks. Unmuting respects the
// main room's speaker limit: who would go over it stays muted.
func (r rules) mute(st *State, a Actor, req protocol.UserMute) outcome {
	fail := func(status uint32, format string, args ...any) outcome {
		return refused(status, protocol.UserMuteNotify{
			Type: protocol.AudioUserMuteNotify, StatusCode: status, Message: msgf(format, args...),
			ConfID: st.E164, OperatorID: a.UserID, UserID: req.UserID, Mode: req.Mode, GroupID: req.GroupID,
			UserInfos: []protocol.UserAudioInfo{},
		})
	}
	var targets []*User
	room := uint32(0)
	switch req.Mode {
	case protocol.MuteUser, protocol.UnmuteUser:
		_, u := st.online(req.UserID)
		if u == nil {
			return fail(protocol.BreakoutUnknownUser, "user %d is not in the conference", req.UserID)
		}
		if !a.Host && u.UserID != a.UserID {
			return fail(protocol.BreakoutNotHost, "only the host mutes or unmutes another user")
		}
		targets = []*User{u}
	case protocol.MuteAll, protocol.UnmuteAll, protocol.MuteGroupAll, protocol.UnmuteGroupAll:
		room = MainRoom
		if req.Mode == protocol.MuteGroupAll || req.Mode == protocol.UnmuteGroupAll {
			room = req.GroupID
		}
		switch _, known := st.room(room); {
		case !a.Host:
			return fail(protocol.BreakoutNotHost, "only the host mutes or unmutes a whole room")
		case !known:
			return fail(protocol.BreakoutUnknownRoom, "groupID %d is not a room of the plan", req.GroupID)
		case room != MainRoom && !st.Meta.Active:
			return fail(protocol.BreakoutNotActive, "breakout rooms are not running")
		}
		for _, u := range st.Users {
			// A host muting a room keeps its own voice.
			if u.Online() && u.Current == room && (req.Mode == protocol.UnmuteAll || req.Mode == protocol.UnmuteGroupAll || u.UserID != a.UserID) {
				targets = append(targets, u)
			}
		}
		slices.SortFunc(targets, func(x, y *User) int { return cmpU32(x.UserID, y.UserID) })
	default:
		return fail(protocol.BreakoutBadRequest, "mode %d: use 0-5 (mute, unmute, mute all, unmute all, group mute all, group unmute all)", req.Mode)
	}
	unmute := req.Mode == protocol.UnmuteUser || req.Mode == protocol.UnmuteAll || req.Mode == protocol.UnmuteGroupAll
	changed := []protocol.UserAudioInfo{}
	held := 0
	for _, u := range targets {
		switch {
		case !unmute && u.Audio == protocol.AudioUnmuted:
			u.Audio = protocol.AudioMuted
		case unmute && u.Audio == protocol.AudioMuted:
			after := *u
			after.Audio = protocol.AudioUnmuted
			if r.wouldExceed(st, u, after) {
				held++
				continue
			}
			u.Audio = protocol.AudioUnmuted
		default:
			continue
		}
		changed = append(changed, protocol.UserAudioInfo{UserID: u.UserID, AudioState: u.Audio})
	}
	if req.Mode == protocol.UnmuteUser && held > 0 {
		return fail(protocol.BreakoutSpeakerLimit, "the main room has %d speakers already: user %d stays muted", r.speakerLimit, req.UserID)
	}
	n := protocol.UserMuteNotify{
		Type: protocol.AudioUserMuteNotify, ConfID: st.E164, OperatorID: a.UserID, UserID: req.UserID,
		Mode: req.Mode, GroupID: req.GroupID, UserInfos: changed,
	}
	if held > 0 {
		n.StatusCode = protocol.BreakoutSpeakerLimit
		n.Message = msgf("the main room allows %d speakers: %d users stay muted", r.speakerLimit, held)
	}
	return ok(n)
}

// audioState is AUDIO_USER_AUDIO_STATE: a user opens its audio (muted or
// not), closes it, or changes its channel. Opening unmuted in a main room
// at its speaker limit opens muted (seed 002 "注意").
func (r rules) audioState(st *State, a Actor, req protocol.UserAudioState) outcome {
	fail := func(status uint32, format string, args ...any) outcome {
		return refused(status, protocol.UserAudioStateNotify{
			Type: protocol.AudioUserAudioStateNotify, StatusCode: status, Message: msgf(format, args...),
			ConfID: st.E164, OperatorID: a.UserID,
			UserInfos: []protocol.UserAudioInfo{{UserID: req.UserID, AudioState: req.AudioState}},
		})
	}
	_, u := st.online(req.UserID)
	switch {
	case u == nil:
		return fail(protocol.BreakoutUnknownUser, "user %d is not in the conference", req.UserID)
	case !a.Host && u.UserID != a.UserID:
		return fail(protocol.BreakoutNotHost, "only the host sets another user's audio")
	case !protocol.ValidAudioState(req.AudioState):
		return fail(protocol.BreakoutBadRequest, "audioState is 0 (closed), 1 (muted) or 2 (unmuted), not %d", req.AudioState)
	}
	after := *u
	after.Audio = req.AudioState
	n := protocol.UserAudioStateNotify{Type: protocol.AudioUserAudioStateNotify, ConfID: st.E164, OperatorID: a.UserID}
	if r.wouldExceed(st, u, after) {
		after.Audio = protocol.AudioMuted
		n.StatusCode = protocol.BreakoutSpeakerLimit
		n.Message = msgf("the main room has %d speakers already: user %d opens its audio muted", r.speakerLimit, u.UserID)
	}
	u.Audio = after.Audio
	if req.DTSChannelID != 0 {
		u.Channel = req.DTSChannelID
	}
	n.UserInfos = []protocol.UserAudioInfo{{UserID: u.UserID, AudioState: u.Audio}}
	return ok(n)
}
