package breakout

import (
	"slices"
	"strconv"

	"github.com/convene/convene/internal/protocol"
)

// MainRoom is the main room's id (seed 002).
const MainRoom = protocol.BreakoutMainRoom

const (
	privListen = protocol.BreakoutListen
	privSpeak  = protocol.BreakoutSpeak
	privAll    = privListen | privSpeak
)

// Room is a room of a conference's breakout plan. The main room is always
// one of them.
type Room struct {
	ID        uint32 `json:"id"`
	Name      string `json:"name"`
	MixerMode uint32 `json:"mixer"`
	Extend    string `json:"extend,omitempty"`
}

// Sub is a user's subscription to another room: it also hears it (listen)
// or also speaks in it (speak).
type Sub struct {
	Room      uint32 `json:"room"`
	Privilege uint32 `json:"priv"`
}

// User is a user of the plan, in the conference or not. A user in the
// conference (Session set) is always in a room (Current); one outside it
// has Current 0.
type User struct {
	UserID    uint32 `json:"uid,omitempty"`
	UmsID     uint32 `json:"ums,omitempty"`
	Preset    uint32 `json:"preset"`
	Current   uint32 `json:"cur,omitempty"`
	Privilege uint32 `json:"priv"`
	Extend    string `json:"ext,omitempty"`
	// Audio is protocol.AudioClosed, AudioMuted or AudioUnmuted.
	Audio   uint32 `json:"audio,omitempty"`
	Client  uint16 `json:"client,omitempty"`
	Role    uint16 `json:"role,omitempty"`
	Channel uint32 `json:"chan,omitempty"`
	Subs    []Sub  `json:"subs,omitempty"`
	// Session is the WebSocket session the user is connected with:
	// "<instance>/<random>"; empty when it is not in the conference.
	Session string `json:"sess,omitempty"`
	// Ticket and Attempt name the connect of that session (Identity).
	Ticket  string `json:"tk,omitempty"`
	Attempt int64  `json:"tn,omitempty"`
}

// Online reports whether the user is in the conference.
func (u *User) Online() bool { return u.Session != "" }

// Phone reports whether the user joined by phone: main room only.
func (u *User) Phone() bool { return u.Client == protocol.ClientPhone }

// Host reports whether the user is the conference's host.
func (u *User) Host() bool { return u.Role == protocol.RoleHost }

func (u *User) clone() *User {
	c := *u
	c.Subs = slices.Clone(u.Subs)
	return &c
}

func (u *User) equal(o *User) bool {
	return u.UserID == o.UserID && u.UmsID == o.UmsID && u.Preset == o.Preset && u.Current == o.Current &&
		u.Privilege == o.Privilege && u.Extend == o.Extend && u.Audio == o.Audio && u.Client == o.Client &&
		u.Role == o.Role && u.Channel == o.Channel && u.Session == o.Session && slices.Equal(u.Subs, o.Subs)
}

// item is the user as the seed's BREAKOUT_ROOM_USER_ITEM.
func (u *User) item() protocol.BreakoutRoomUserItem {
	return protocol.BreakoutRoomUserItem{
		UserID: u.UserID, UserUmsID: u.UmsID, UserPresetRoomID: u.Preset,
		UserCurrentRoomID: u.Current, Privilege: u.Privilege, Extend: u.Extend,
	}
}

// Meta is the part of the state that is not per user.
type Meta struct {
	// Active is set while the rooms run (from start to the end of a stop).
	Active bool `json:"active,omitempty"`
	// Deadline is when a closing countdown ends (Unix ms); 0 when none
	// runs. Delay is the countdown it announced, in seconds.
	Deadline  int64  `json:"deadline,omitempty"`
	Delay     uint32 `json:"delay,omitempty"`
	StartedAt int64  `json:"startedAt,omitempty"` // Unix s
	StartedBy uint32 `json:"startedBy,omitempty"`
	StoppedBy uint32 `json:"stoppedBy,omitempty"`
	Extend    string `json:"extend,omitempty"`
	Rooms     []Room `json:"rooms"`
	// Record is the room the recording takes (0: the main room).
	Record uint32 `json:"record,omitempty"`
	// Node is the media node the audio plan goes to.
	Node string `json:"node,omitempty"`
}

// State is a conference's breakout state: the plan (rooms, users with
// their preset and current rooms), whether it runs, and each user's audio.
type State struct {
	E164    string
	Version int64
	Meta    Meta
	Users   map[string]*User
}

// newState is the state of a conference before anything happened: the
// main room only.
func newState(e164 string) *State {
	return &State{E164: e164, Meta: Meta{Rooms: []Room{mainRoom()}}, Users: map[string]*User{}}
}

func mainRoom() Room { return Room{ID: MainRoom, Name: "Main room", MixerMode: protocol.MixerServer} }

// Clone copies the state deeply.
func (s *State) Clone() *State {
	c := &State{E164: s.E164, Version: s.Version, Meta: s.Meta, Users: make(map[string]*User, len(s.Users))}
	c.Meta.Rooms = slices.Clone(s.Meta.Rooms)
	for k, u := range s.Users {
		c.Users[k] = u.clone()
	}
	return c
}

// userKey keys a user: by ums id when it has one (its entry outlives its
// presence in the conference), else by user id.
func userKey(ums, uid uint32) string {
	if ums != 0 {
		return "u" + strconv.FormatUint(uint64(ums), 10)
	}
	return "i" + strconv.FormatUint(uint64(uid), 10)
}

// room finds a room of the plan.
func (s *State) room(id uint32) (Room, bool) {
	for _, r := range s.Meta.Rooms {
		if r.ID == id {
			return r, true
		}
	}
	return Room{}, false
}

// find finds a user by ums id when given, else by user id, preferring the
// one in the conference.
func (s *State) find(ums, uid uint32) (string, *User) {
	if ums != 0 {
		k := userKey(ums, 0)
		return k, s.Users[k]
	}
	if uid == 0 {
		return "", nil
	}
	var (
		key string
		hit *User
	)
	for k, u := range s.Users {
		if u.UserID != uid {
			continue
		}
		if u.Online() {
			return k, u
		}
		if hit == nil || k < key {
			key, hit = k, u
		}
	}
	return key, hit
}

// online finds a user in the conference by user id.
func (s *State) online(uid uint32) (string, *User) {
	k, u := s.find(0, uid)
	if u == nil || !u.Online() {
		return "", nil
	}
	return k, u
}

// counting reports whether a closing countdown runs.
func (s *State) counting() bool { return s.Meta.Active && s.Meta.Deadline != 0 }

// roomsEmpty reports whether nobody in the conference is in a breakout
// room.
func (s *State) roomsEmpty() bool {
	for _, u := range s.Users {
		if u.Online() && u.Current != MainRoom {
			return false
		}
	}
	return true
}

// recordRoom is the room the recording takes.
func (s *State) recordRoom() uint32 {
	if s.Meta.Record == 0 {
		return MainRoom
	}
	return s.Meta.Record
}

// mixed reports whether the mixer mixes a room: a server-mix room, or the
// room being recorded (a recording needs a server mix).
func (s *State) mixed(id uint32) bool {
	if id == s.recordRoom() {
		return true
	}
	r, ok := s.room(id)
	return ok && r.MixerMode == protocol.MixerServer
}

// effective masks a privilege by the user's audio: no audio, no listening;
// muted, no speaking.
func effective(priv, audio uint32) uint32 {
	switch audio {
	case protocol.AudioClosed:
		return 0
	case protocol.AudioMuted:
		return priv &^ privSpeak
	}
	return priv
}

// speaksIn lists the rooms a user's voice reaches, its own first.
func (s *State) speaksIn(u *User) []uint32 {
	if !u.Online() || u.Audio != protocol.AudioUnmuted {
		return nil
	}
	var out []uint32
	if u.Privilege&privSpeak != 0 {
		out = append(out, u.Current)
	}
	if s.Meta.Active {
		for _, sub := range u.Subs {
			if sub.Room != u.Current && sub.Privilege&privSpeak != 0 {
				out = append(out, sub.Room)
			}
		}
	}
	return out
}

// hearsIn lists the rooms a user hears, its own first.
func (s *State) hearsIn(u *User) []uint32 {
	if !u.Online() || u.Audio == protocol.AudioClosed {
		return nil
	}
	var out []uint32
	if u.Privilege&privListen != 0 {
		out = append(out, u.Current)
	}
	if s.Meta.Active {
		for _, sub := range u.Subs {
			if sub.Room != u.Current && sub.Privilege&privListen != 0 {
				out = append(out, sub.Room)
			}
		}
	}
	return out
}

// mainSpeakers lists the users whose voice reaches the main room, by user
// id.
func (s *State) mainSpeakers() []uint32 {
	var out []uint32
	for _, u := range s.Users {
		if slices.Contains(s.speaksIn(u), MainRoom) {
			out = append(out, u.UserID)
		}
	}
	slices.Sort(out)
	return out
}

// roomInfos is the plan as the seed's roomInfos: every room with the users
// whose preset room it is, users ordered by user id then ums id.
func (s *State) roomInfos() []protocol.BreakoutRoomInfo {
	byRoom := make(map[uint32][]protocol.BreakoutRoomUserItem, len(s.Meta.Rooms))
	for _, u := range s.Users {
		byRoom[u.Preset] = append(byRoom[u.Preset], u.item())
	}
	out := make([]protocol.BreakoutRoomInfo, 0, len(s.Meta.Rooms))
	for _, r := range s.Meta.Rooms {
		items := byRoom[r.ID]
		if items == nil {
			items = []protocol.BreakoutRoomUserItem{}
		}
		slices.SortFunc(items, func(a, b protocol.BreakoutRoomUserItem) int {
			if a.UserID != b.UserID {
				return cmpU32(a.UserID, b.UserID)
			}
			return cmpU32(a.UserUmsID, b.UserUmsID)
		})
		out = append(out, protocol.BreakoutRoomInfo{RoomID: r.ID, Name: r.Name, MixerMode: r.MixerMode, Extend: r.Extend, UserItems: items})
	}
	return out
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// remaining is the countdown's seconds left at now (Unix ms), rounded up.
func (s *State) remaining(now int64) uint32 {
	if !s.counting() || s.Meta.Deadline <= now {
		return 0
	}
	return uint32((s.Meta.Deadline - now + 999) / 1000)
}
