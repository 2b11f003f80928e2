package breakout

import (
	"github.com/convene/convene/internal/protocol"
)

// Identity is who a WebSocket client is, as its ticket vouches.
type Identity struct {
	UserID uint32 `json:"u"`
	UmsID  uint32 `json:"m,omitempty"`
	Role   uint16 `json:"r,omitempty"`
	Client uint16 `json:"c,omitempty"`
	// Audio is the audio state the client enters with.
	Audio   uint32 `json:"a,omitempty"`
	Channel uint32 `json:"ch,omitempty"`
	// Ticket and Attempt name the connect (set by the server, never read
	// from a ticket): the ticket it came with and
	// its number among the connects of that ticket (retries of one).
	Ticket  string `json:"-"`
	Attempt int64  `json:"-"`
}

// join enters a user into the conference on session: a user of the plan
// gets its entry back, another gets one in the main room. A user already
// connected elsewhere keeps its room and its old session is closed.
// Nothing is broadcast: clients learn of entries from the conference.
func (r rules) join(st *State, id Identity, session string) outcome {
	if id.UserID == 0 || !protocol.ValidAudioState(id.Audio) {
		return refused(protocol.BreakoutBadRequest, nil)
	}
	var out outcome
	k := userKey(id.UmsID, id.UserID)
	// A user id belongs to one user in the conference at a time.
	for ko, other := range st.Users {
		if ko != k && other.Online() && other.UserID == id.UserID {
			out.kick = other.Session
			r.drop(st, ko, other)
		}
	}
	u := st.Users[k]
	if u == nil {
		if len(st.Users) >= r.maxUsers {
			return refused(protocol.BreakoutBadRequest, nil)
		}
		u = &User{UmsID: id.UmsID, Preset: MainRoom, Privilege: privAll}
		st.Users[k] = u
	}
	if u.Online() && u.Session != session && id.Ticket != "" && u.Ticket == id.Ticket && u.Attempt > id.Attempt {
		// An earlier connect of the ticket, entering after a retry of it
		// did: its client gave up on it; the retry keeps the user.
		return refused(protocol.BreakoutBadRequest, nil)
	}
	if u.Online() && u.Session != session {
		out.kick = u.Session // a reconnect: it keeps its room
	} else if !u.Online() {
		u.Current = MainRoom
	}
	u.UserID, u.Role, u.Client, u.Audio, u.Session = id.UserID, id.Role, id.Client, id.Audio, session
	u.Ticket, u.Attempt = id.Ticket, id.Attempt
	u.Channel = id.Channel
	if u.Channel == 0 {
		u.Channel = id.UserID
	}
	if u.Phone() {
		u.Current, u.Subs = MainRoom, nil
	}
	if !st.Meta.Active {
		u.Current = MainRoom
	}
	return out
}

// leave takes the user of session out of the conference (seed 002 "user
// leave"): a ums user keeps its entry with current room 0, another is
// removed. Nothing is broadcast.
func (r rules) leave(st *State, session string) outcome {
	for k, u := range st.Users {
		if u.Session == session {
			r.drop(st, k, u)
			return outcome{}
		}
	}
	return outcome{}
}

func (r rules) drop(st *State, k string, u *User) {
	if u.UmsID == 0 {
		delete(st.Users, k)
		return
	}
	u.Current, u.Session, u.Subs, u.Audio = 0, "", nil, protocol.AudioClosed
}

// setRoom is BMS_CONF_SET_USER_BREAKOUT_ROOM: join, switch or leave (room
// 0: back to the main room). The host moves anyone and may change a
// user's preset room and privilege; a participant moves itself, to its
// preset room or the main room. While the rooms close nobody joins one.
func (r rules) setRoom(st *State, a Actor, req protocol.SetUserBreakoutRoom) outcome {
	d := req.DestItem
	fail := func(status uint32, format string, args ...any) outcome {
		return refused(status, protocol.SetUserBreakoutRoomNotify{
			Type: protocol.BMSSetUserBreakoutRoomNotify, StatusCode: status, Message: msgf(format, args...),
			ConfID: st.E164, OperatorID: a.UserID, DestItem: d,
		})
	}
	_, u := st.find(d.UserUmsID, d.UserID)
	if u == nil {
		return fail(protocol.BreakoutUnknownUser, "no user %d (ums %d) in the plan or the conference", d.UserID, d.UserUmsID)
	}
	self := a.UserID != 0 && u.Online() && u.UserID == a.UserID
	if !a.Host && !self {
		return fail(protocol.BreakoutNotHost, "only the host moves other users")
	}
	if d.UserPresetRoomID != 0 && d.UserPresetRoomID != u.Preset {
		if !a.Host {
			return fail(protocol.BreakoutNotHost, "only the host changes a user's preset room")
		}
		if _, ok := st.room(d.UserPresetRoomID); !ok {
			return fail(protocol.BreakoutUnknownRoom, "room %d is not in the plan", d.UserPresetRoomID)
		}
	}
	if d.Privilege != 0 && d.Privilege != u.Privilege {
		if !a.Host {
			return fail(protocol.BreakoutNotHost, "only the host changes a user's privilege")
		}
		if d.Privilege&^privAll != 0 {
			return fail(protocol.BreakoutBadRequest, "privilege is a combination of listen 0x01 and speak 0x02, not %#x", d.Privilege)
		}
	}
	target := d.UserCurrentRoomID
	if !u.Online() {
		if target != 0 {
			return fail(protocol.BreakoutNotInConf, "user %d (ums %d) is not in the conference: only its preset room can change (send userCurrentRoomId 0)", d.UserID, d.UserUmsID)
		}
	} else {
		if target == 0 {
			target = MainRoom
		}
		if _, ok := st.room(target); !ok {
			return fail(protocol.BreakoutUnknownRoom, "room %d is not in the plan", target)
		}
		if target != MainRoom && target != u.Current {
			preset := u.Preset
			if d.UserPresetRoomID != 0 && a.Host {
				preset = d.UserPresetRoomID
			}
			switch {
			case !st.Meta.Active:
				return fail(protocol.BreakoutNotActive, "breakout rooms are not running")
			case st.counting():
				return fail(protocol.BreakoutCountdown, "the rooms close in %d s: nobody joins one meanwhile", st.remaining(r.now))
			case u.Phone():
				return fail(protocol.BreakoutPhoneMainOnly, "user %d is on the phone: phone users stay in the main room", u.UserID)
			case !a.Host && target != preset:
				return fail(protocol.BreakoutNotAllowed, "you may join your preset room %d or go back to the main room %d", preset, MainRoom)
			}
		}
		u.Current = target
	}
	if d.UserPresetRoomID != 0 && a.Host {
		u.Preset = d.UserPresetRoomID
	}
	if d.Privilege != 0 && a.Host {
		u.Privilege = d.Privilege
	}
	if d.Extend != "" && (a.Host || self) {
		u.Extend = d.Extend
	}
	return ok(protocol.SetUserBreakoutRoomNotify{
		Type: protocol.BMSSetUserBreakoutRoomNotify, ConfID: st.E164, OperatorID: a.UserID, DestItem: u.item(),
	})
}
