package breakout

import (
	"slices"

	"github.com/convene/convene/internal/protocol"
)

// View is a conference's breakout state as the REST mirror shows it.
type View struct {
	E164    string `json:"e164"`
	Version int64  `json:"version"`
	Active  bool   `json:"active"`
	// DelayTime is the seconds left of a closing countdown; Deadline when
	// it ends (Unix ms).
	DelayTime    uint32                      `json:"delayTime"`
	Deadline     int64                       `json:"deadline,omitempty"`
	StartedAt    int64                       `json:"startedAt,omitempty"`
	StartedBy    uint32                      `json:"startedBy,omitempty"`
	Extend       string                      `json:"extend"`
	RecordRoomID uint32                      `json:"recordRoomID"`
	Node         string                      `json:"node,omitempty"`
	RoomInfos    []protocol.BreakoutRoomInfo `json:"roomInfos"`
	Users        []UserView                  `json:"users"`
}

// UserView is a user with its audio.
type UserView struct {
	protocol.BreakoutRoomUserItem
	Online         bool                                 `json:"online"`
	AudioState     uint32                               `json:"audioState"`
	ClientType     uint16                               `json:"clientType"`
	Role           uint16                               `json:"role"`
	DTSChannelID   uint32                               `json:"dtsChannelID"`
	SubscribeInfos []protocol.BreakoutRoomSubscribeInfo `json:"subscribeInfos"`
}

func viewOf(st *State, now int64) View {
	v := View{
		E164: st.E164, Version: st.Version, Active: st.Meta.Active, DelayTime: st.remaining(now), Deadline: st.Meta.Deadline,
		StartedAt: st.Meta.StartedAt, StartedBy: st.Meta.StartedBy, Extend: st.Meta.Extend, RecordRoomID: st.recordRoom(),
		Node: st.Meta.Node, RoomInfos: st.roomInfos(), Users: make([]UserView, 0, len(st.Users)),
	}
	for _, u := range st.Users {
		v.Users = append(v.Users, UserView{
			BreakoutRoomUserItem: u.item(), Online: u.Online(), AudioState: u.Audio, ClientType: u.Client, Role: u.Role,
			DTSChannelID: u.Channel, SubscribeInfos: subInfos(u.Subs),
		})
	}
	slices.SortFunc(v.Users, func(a, b UserView) int {
		if a.UserID != b.UserID {
			return cmpU32(a.UserID, b.UserID)
		}
		return cmpU32(a.UserUmsID, b.UserUmsID)
	})
	return v
}

// Hearing is one user's place in the audio routing: the rooms its voice
// reaches, the rooms it hears, and so whom it hears.
type Hearing struct {
	UserID     uint32   `json:"userID"`
	Room       uint32   `json:"room"`
	AudioState uint32   `json:"audioState"`
	SpeaksIn   []uint32 `json:"speaksIn"`
	HearsIn    []uint32 `json:"hearsIn"`
	Hears      []uint32 `json:"hears"`
}

// Hearings says who hears whom, for every user in the conference, by user
// id: u hears v when v's voice reaches a room u hears.
func Hearings(st *State) []Hearing {
	var users []*User
	for _, u := range st.Users {
		if u.Online() {
			users = append(users, u)
		}
	}
	slices.SortFunc(users, func(a, b *User) int { return cmpU32(a.UserID, b.UserID) })
	speaks := make(map[uint32][]uint32, len(users)) // room -> speakers
	for _, u := range users {
		for _, r := range st.speaksIn(u) {
			speaks[r] = append(speaks[r], u.UserID)
		}
	}
	out := make([]Hearing, 0, len(users))
	for _, u := range users {
		h := Hearing{UserID: u.UserID, Room: u.Current, AudioState: u.Audio, SpeaksIn: orEmpty(st.speaksIn(u)), HearsIn: orEmpty(st.hearsIn(u)), Hears: []uint32{}}
		for _, r := range h.HearsIn {
			for _, v := range speaks[r] {
				if v != u.UserID && !slices.Contains(h.Hears, v) {
					h.Hears = append(h.Hears, v)
				}
			}
		}
		slices.Sort(h.Hears)
		out = append(out, h)
	}
	return out
}

func orEmpty(v []uint32) []uint32 {
	if v == nil {
		return []uint32{}
	}
	return v
}

// AudioView is GET .../breakout/audio: who hears whom, and the messages
// the node's mixer and cdts must hold.
type AudioView struct {
	E164               string                              `json:"e164"`
	Version            int64                               `json:"version"`
	Node               string                              `json:"node,omitempty"`
	Status             uint32                              `json:"status"`
	RecordRoomID       uint32                              `json:"recordRoomID"`
	SpeakerLimit       int                                 `json:"speakerLimit"`
	MainSpeakers       []uint32                            `json:"mainSpeakers"`
	Hearing            []Hearing                           `json:"hearing"`
	Mixer              protocol.BreakoutRoomStateToMixer   `json:"mixer"`
	CDTS               protocol.BreakoutRoomStateToCDTS    `json:"cdts"`
	CDTSSubscriptions  []protocol.BreakoutSubscribeToCDTS  `json:"cdtsSubscriptions"`
	MixerSubscriptions []protocol.BreakoutSubscribeToMixer `json:"mixerSubscriptions"`
}

func audioViewOf(st *State, p *Plan, limit int) AudioView {
	v := AudioView{
		E164: st.E164, Version: st.Version, Node: st.Meta.Node, Status: p.Status, RecordRoomID: p.Record,
		SpeakerLimit: limit, MainSpeakers: orEmpty(st.mainSpeakers()), Hearing: Hearings(st),
		Mixer: p.MixerState(st.E164, st.Version), CDTS: p.CDTSState(st.E164, st.Version),
		CDTSSubscriptions: []protocol.BreakoutSubscribeToCDTS{}, MixerSubscriptions: []protocol.BreakoutSubscribeToMixer{},
	}
	full := Full(p)
	v.CDTSSubscriptions = append(v.CDTSSubscriptions, p.CDTSSubscriptions(st.E164, st.Version, full.CDTSSubs)...)
	for _, u := range full.MixerSub {
		v.MixerSubscriptions = append(v.MixerSubscriptions, p.MixerSubscription(st.E164, st.Version, u))
	}
	return v
}
