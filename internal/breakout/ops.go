package breakout

import (
	"fmt"
	"slices"

	"github.com/convene/convene/internal/protocol"
)

// The operations of seed 002 as pure functions: each takes a copy of the
// state, changes it, and says what to tell whom. The service persists the
// change and sends the notifications (service.go).

// Actor is who asks for an operation.
type Actor struct {
	// UserID is the user asking, 0 for an operator (the REST mirror).
	UserID uint32
	// Host may start, stop and move others; an operator is a host.
	Host bool
}

// Operator is the actor of the REST mirror: a host that is no user.
var Operator = Actor{Host: true}

// rules are the limits and the time an operation runs with.
type rules struct {
	now          int64 // Unix ms
	speakerLimit int
	maxRooms     int
	maxUsers     int
	maxDelay     uint32
}

// outcome is what an operation did.
type outcome struct {
	status uint32
	// reply goes to the requester only (refusals, lists).
	reply any
	// notes are broadcast to every client of the conference, in order.
	notes []any
	// full asks for the whole audio plan to be sent (a new node).
	full bool
	// kick is a session this change replaced: its connection is closed.
	kick string
	// finished says the rooms ended in this change.
	finished bool
}

func ok(notes ...any) outcome { return outcome{notes: notes} }

// refused is an outcome with a status and the requester's notify.
func refused(status uint32, reply any) outcome { return outcome{status: status, reply: reply} }

func msgf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// settle runs after every operation: a closing countdown ends as soon as
// the rooms are empty, and the main room keeps at most speakerLimit
// speakers (those who just came are muted first).
func (r rules) settle(prev, next *State, out *outcome) {
	if next.counting() && next.roomsEmpty() {
		out.notes = append(out.notes, r.finish(next))
		out.finished = true
	}
	if muted := r.capMain(prev, next); len(muted) > 0 {
		infos := make([]protocol.UserAudioInfo, 0, len(muted))
		for _, id := range muted {
			infos = append(infos, protocol.UserAudioInfo{UserID: id, AudioState: protocol.AudioMuted})
		}
		out.notes = append(out.notes, protocol.UserAudioStateNotify{
			Type: protocol.AudioUserAudioStateNotify, ConfID: next.E164, UserInfos: infos,
			StatusCode: protocol.BreakoutSpeakerLimit,
			Message:    msgf("the main room allows %d speakers: these users were muted on entering it", r.speakerLimit),
		})
	}
}

// capMain mutes the newest speakers of the main room beyond the limit:
// those who did not speak there before the change, highest user id first.
func (r rules) capMain(prev, next *State) []uint32 {
	speakers := next.mainSpeakers()
	over := len(speakers) - r.speakerLimit
	if over <= 0 {
		return nil
	}
	before := map[uint32]bool{}
	for _, id := range prev.mainSpeakers() {
		before[id] = true
	}
	var muted []uint32
	for pass := 0; pass < 2 && over > 0; pass++ {
		for i := len(speakers) - 1; i >= 0 && over > 0; i-- {
			id := speakers[i]
			// First pass: newcomers only; second: anyone (cannot
			// happen unless the limit shrank).
			if (pass == 0 && before[id]) || slices.Contains(muted, id) {
				continue
			}
			_, u := next.online(id)
			u.Audio = protocol.AudioMuted
			muted = append(muted, id)
			over--
		}
	}
	slices.Sort(muted)
	return muted
}

// wouldExceed reports whether letting u speak as after changes would put
// the main room over the limit.
func (r rules) wouldExceed(st *State, u *User, after User) bool {
	was := slices.Contains(st.speaksIn(u), MainRoom)
	if was || !slices.Contains(st.speaksIn(&after), MainRoom) {
		return false
	}
	return len(st.mainSpeakers()) >= r.speakerLimit
}

// start is BMS_CONF_BREAKOUT_ROOMS_START: the request's plan becomes the
// plan; users in the conference not in it stay, in the main room.
func (r rules) start(st *State, a Actor, req protocol.BreakoutRoomsStart) outcome {
	fail := func(status uint32, format string, args ...any) outcome {
		return refused(status, protocol.BreakoutRoomsStartNotify{
			Type: protocol.BMSBreakoutRoomsStartNotify, StatusCode: status, Message: msgf(format, args...),
			Timestamp: uint64(r.now / 1000), ConfID: st.E164, UserID: a.UserID, Extend: req.Extend, RoomInfos: req.RoomInfos,
		})
	}
	switch {
	case !a.Host:
		return fail(protocol.BreakoutNotHost, "only the host starts breakout rooms")
	case st.Meta.Active:
		return fail(protocol.BreakoutAlreadyActive, "breakout rooms run already: stop them before starting again")
	case len(req.RoomInfos) > r.maxRooms:
		return fail(protocol.BreakoutBadRequest, "%d rooms: at most %d", len(req.RoomInfos), r.maxRooms)
	}
	rooms := []Room{mainRoom()}
	seen := map[uint32]bool{}
	for _, ri := range req.RoomInfos {
		switch {
		case ri.RoomID == 0:
			return fail(protocol.BreakoutBadRequest, "room %q has roomID 0: give every room an id (the main room is %d)", ri.Name, MainRoom)
		case seen[ri.RoomID]:
			return fail(protocol.BreakoutBadRequest, "room %d is given twice", ri.RoomID)
		case ri.MixerMode != protocol.MixerServer && ri.MixerMode != protocol.MixerClient:
			return fail(protocol.BreakoutBadRequest, "room %d: mixerMode is 0 (server mix) or 1 (client mix), not %d", ri.RoomID, ri.MixerMode)
		}
		seen[ri.RoomID] = true
		room := Room{ID: ri.RoomID, Name: ri.Name, MixerMode: ri.MixerMode, Extend: ri.Extend}
		if ri.RoomID == MainRoom {
			if room.Name == "" {
				room.Name = rooms[0].Name
			}
			rooms[0] = room
			continue
		}
		rooms = append(rooms, room)
	}
	isRoom := func(id uint32) bool { return id == MainRoom || seen[id] }

	users := make(map[string]*User, len(st.Users))
	// Users by user id, those in the conference first: a start names
	// thousands, a scan per name would be slow.
	byID := make(map[uint32]string, len(st.Users))
	for k, u := range st.Users {
		if prev, ok := byID[u.UserID]; u.UserID != 0 && (!ok || (u.Online() && !st.Users[prev].Online()) ||
			(u.Online() == st.Users[prev].Online() && k < prev)) {
			byID[u.UserID] = k
		}
	}
	find := func(ums, uid uint32) (string, *User) {
		if ums != 0 {
			k := userKey(ums, 0)
			return k, st.Users[k]
		}
		k, ok := byID[uid]
		if !ok {
			return "", nil
		}
		return k, st.Users[k]
	}
	for _, ri := range req.RoomInfos {
		for _, it := range ri.UserItems {
			if it.UserID == 0 && it.UserUmsID == 0 {
				return fail(protocol.BreakoutBadRequest, "room %d lists a user with neither userId nor userUmsId", ri.RoomID)
			}
			if it.Privilege&^privAll != 0 {
				return fail(protocol.BreakoutBadRequest, "user %d/%d: privilege is a combination of listen 0x01 and speak 0x02, not %#x", it.UserID, it.UserUmsID, it.Privilege)
			}
			k := userKey(it.UserUmsID, it.UserID)
			u := &User{UserID: it.UserID, UmsID: it.UserUmsID, Preset: ri.RoomID, Privilege: it.Privilege, Extend: it.Extend}
			ck, cur := find(it.UserUmsID, it.UserID)
			if cur != nil {
				// The item names a user the state knows (maybe by user id
				// only): keep its key and its ums id.
				k, u.UmsID = ck, cur.UmsID
			}
			if users[k] != nil {
				return fail(protocol.BreakoutBadRequest, "user %d/%d is listed twice: a user is in one room", it.UserID, it.UserUmsID)
			}
			if u.Privilege == 0 {
				u.Privilege = privAll
			}
			if cur != nil && cur.Online() {
				u.UserID, u.Audio, u.Client, u.Role, u.Channel, u.Session = cur.UserID, cur.Audio, cur.Client, cur.Role, cur.Channel, cur.Session
				u.Current = it.UserCurrentRoomID
				if u.Current == 0 {
					u.Current = MainRoom
				}
				if !isRoom(u.Current) {
					return fail(protocol.BreakoutUnknownRoom, "user %d: userCurrentRoomId %d is not a room of the plan", it.UserID, it.UserCurrentRoomID)
				}
				if u.Phone() {
					u.Current = MainRoom
				}
			}
			users[k] = u
		}
	}
	// Users in the conference the plan leaves out stay, in the main room.
	for k, u := range st.Users {
		if !u.Online() || users[k] != nil {
			continue
		}
		c := u.clone()
		c.Preset, c.Current, c.Subs = MainRoom, MainRoom, nil
		users[k] = c
	}
	if len(users) > r.maxUsers {
		return fail(protocol.BreakoutBadRequest, "%d users: at most %d", len(users), r.maxUsers)
	}
	st.Users = users
	st.Meta = Meta{
		Active: true, StartedAt: r.now / 1000, StartedBy: a.UserID, Extend: req.Extend, Rooms: rooms, Node: st.Meta.Node,
	}
	return ok(protocol.BreakoutRoomsStartNotify{
		Type: protocol.BMSBreakoutRoomsStartNotify, Timestamp: uint64(r.now / 1000), ConfID: st.E164,
		UserID: a.UserID, Extend: req.Extend, RoomInfos: st.roomInfos(),
	})
}

// stop is BMS_CONF_BREAKOUT_ROOMS_STOP: delay 0 (or rooms already empty)
// ends now; more starts a countdown, during which nobody joins a room.
func (r rules) stop(st *State, a Actor, delay uint32) outcome {
	fail := func(status uint32, format string, args ...any) outcome {
		return refused(status, protocol.BreakoutRoomsStopNotify{
			Type: protocol.BMSBreakoutRoomsStopNotify, StatusCode: status, Message: msgf(format, args...),
			ConfID: st.E164, UserID: a.UserID, DelayTime: delay,
		})
	}
	switch {
	case !a.Host:
		return fail(protocol.BreakoutNotHost, "only the host stops breakout rooms")
	case !st.Meta.Active:
		return fail(protocol.BreakoutNotActive, "breakout rooms are not running")
	case delay > r.maxDelay:
		return fail(protocol.BreakoutBadRequest, "delayTime %d s: at most %d", delay, r.maxDelay)
	case st.counting() && delay > 0:
		return fail(protocol.BreakoutCountdown, "the rooms close in %d s already; stop with delayTime 0 to close them now", st.remaining(r.now))
	}
	st.Meta.StoppedBy = a.UserID
	if delay == 0 || st.roomsEmpty() {
		out := ok(r.finish(st))
		out.finished = true
		return out
	}
	st.Meta.Deadline = r.now + int64(delay)*1000
	st.Meta.Delay = delay
	return ok(protocol.BreakoutRoomsStopNotify{
		Type: protocol.BMSBreakoutRoomsStopNotify, ConfID: st.E164, UserID: a.UserID, DelayTime: delay,
	})
}

// finishDue ends the rooms if their countdown is over.
func (r rules) finishDue(st *State) outcome {
	if !st.counting() || st.Meta.Deadline > r.now {
		return outcome{}
	}
	out := ok(r.finish(st))
	out.finished = true
	return out
}

// finish ends the rooms: everyone in the conference is back in the main
// room, subscriptions end, the recording takes the main room. The plan is
// kept for the host to edit and start again. It returns the final notify.
func (r rules) finish(st *State) protocol.BreakoutRoomsStopNotify {
	st.Meta.Active, st.Meta.Deadline, st.Meta.Delay, st.Meta.Record = false, 0, 0, 0
	for _, u := range st.Users {
		u.Subs = nil
		if u.Online() {
			u.Current = MainRoom
		}
	}
	return protocol.BreakoutRoomsStopNotify{
		Type: protocol.BMSBreakoutRoomsStopNotify, ConfID: st.E164, UserID: st.Meta.StoppedBy, DelayTime: 0,
	}
}

// list is BMS_CONF_GET_BREAKOUT_ROOMS_LIST_NOTIFY for userID.
func (r rules) list(st *State, userID uint32) protocol.GetBreakoutRoomsListNotify {
	status := uint32(0)
	if st.Meta.Active {
		status = 1
	}
	return protocol.GetBreakoutRoomsListNotify{
		Type: protocol.BMSGetBreakoutRoomsListNotify, ConfID: st.E164, UserID: userID, Extend: st.Meta.Extend,
		Status: status, DelayTime: st.remaining(r.now), RoomInfos: st.roomInfos(),
	}
}
