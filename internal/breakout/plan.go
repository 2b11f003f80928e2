package breakout

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/convene/convene/internal/protocol"
)

// Plan is the audio routing a conference's breakout state implies (seed
// 002 "audio", "特殊用户", "注意"), as pure data: what the node's mixer and
// forwarder (cdts) must be told. It is derived from the state alone, so
// any instance derives the same plan.
//
// The rules:
//   - cdts knows every room with the users in it (status 1 while the rooms
//     run); with the rooms closed, one room, the main one, with everyone;
//   - the mixer knows the server-mix rooms (and the recorded room) with the
//     users who speak in them; client-mix rooms reach cdts only;
//   - a user's effective privilege is its privilege masked by its audio:
//     closed audio hears and says nothing, muted audio says nothing;
//   - subscriptions to other rooms are per user, full updates, to cdts
//     always and to the mixer only for server-mix rooms the user speaks in;
//   - the main room has at most the speaker limit of speakers (the
//     operations keep that true), and phone users are only in it.
type Plan struct {
	Status uint32
	Record uint32
	// Rooms is what cdts is told: rooms in plan order, users by user id.
	Rooms []protocol.BreakoutRoomAudioInfo
	// Mixer is what the mixer is told: mixed rooms with their speakers.
	Mixer []protocol.BreakoutRoomUserInfoMixer
	// Subs are the users' subscriptions for cdts; users with none are
	// left out.
	Subs map[uint32][]protocol.BreakoutRoomSubscribeInfo
	// MixerSubs are the users' subscriptions for the mixer; users with
	// none are left out.
	MixerSubs map[uint32][]protocol.UserAudioSubscribeInfoMixer
	// Group is each user's room, the groupID of its subscription updates.
	Group map[uint32]uint32
}

// Derive computes the plan of a state.
func Derive(st *State) *Plan {
	p := &Plan{
		Record:    st.recordRoom(),
		Subs:      map[uint32][]protocol.BreakoutRoomSubscribeInfo{},
		MixerSubs: map[uint32][]protocol.UserAudioSubscribeInfoMixer{},
		Group:     map[uint32]uint32{},
	}
	rooms := st.Meta.Rooms
	if st.Meta.Active {
		p.Status = 1
	} else {
		rooms = rooms[:1] // the main room
	}
	members := make(map[uint32][]*User, len(rooms))
	for _, u := range st.Users {
		if u.Online() {
			members[u.Current] = append(members[u.Current], u)
			p.Group[u.UserID] = u.Current
		}
	}
	for _, r := range rooms {
		us := members[r.ID]
		slices.SortFunc(us, func(a, b *User) int { return cmpU32(a.UserID, b.UserID) })
		info := protocol.BreakoutRoomAudioInfo{RoomID: r.ID, MixerMode: r.MixerMode, UserInfos: make([]protocol.BreakoutRoomUserInfo, 0, len(us))}
		var speakers []protocol.AudioConfigMixerInfo
		for _, u := range us {
			priv := effective(u.Privilege, u.Audio)
			info.UserInfos = append(info.UserInfos, protocol.BreakoutRoomUserInfo{UserID: u.UserID, Privilege: priv, DTSChannelID: u.Channel})
			if priv&privSpeak != 0 {
				speakers = append(speakers, mixerInfo(u, priv))
			}
		}
		p.Rooms = append(p.Rooms, info)
		if st.mixed(r.ID) {
			if speakers == nil {
				speakers = []protocol.AudioConfigMixerInfo{}
			}
			p.Mixer = append(p.Mixer, protocol.BreakoutRoomUserInfoMixer{RoomID: r.ID, UserInfos: speakers})
		}
	}
	if p.Mixer == nil {
		p.Mixer = []protocol.BreakoutRoomUserInfoMixer{}
	}
	if !st.Meta.Active {
		return p
	}
	for _, u := range st.Users {
		if !u.Online() || len(u.Subs) == 0 {
			continue
		}
		var subs []protocol.BreakoutRoomSubscribeInfo
		var mix []protocol.UserAudioSubscribeInfoMixer
		for _, s := range u.Subs {
			if s.Room == u.Current {
				continue
			}
			priv := effective(s.Privilege, u.Audio)
			subs = append(subs, protocol.BreakoutRoomSubscribeInfo{RoomID: s.Room, Privilege: priv})
			if priv&privSpeak != 0 && st.mixed(s.Room) {
				mix = append(mix, protocol.UserAudioSubscribeInfoMixer{RoomID: s.Room, Info: mixerInfo(u, priv)})
			}
		}
		if len(subs) > 0 {
			p.Subs[u.UserID] = subs
		}
		if len(mix) > 0 {
			p.MixerSubs[u.UserID] = mix
		}
	}
	return p
}

func mixerInfo(u *User, priv uint32) protocol.AudioConfigMixerInfo {
	return protocol.AudioConfigMixerInfo{User: u.UserID, Privilege: priv, DTSChannelID: u.Channel, ClientType: u.Client, Role: u.Role}
}

// MixerState is the plan's AUDIO_BREAKOUT_ROOM_STATE_TO_MIXER.
func (p *Plan) MixerState(e164 string, version int64) protocol.BreakoutRoomStateToMixer {
	return protocol.BreakoutRoomStateToMixer{
		Type: protocol.AudioBreakoutRoomStateToMixer, ConfID: e164, Version: version,
		Status: p.Status, RecordRoomID: p.Record, RoomInfos: p.Mixer,
	}
}

// CDTSState is the plan's AUDIO_BREAKOUT_ROOM_STATE_TO_CDTS.
func (p *Plan) CDTSState(e164 string, version int64) protocol.BreakoutRoomStateToCDTS {
	return protocol.BreakoutRoomStateToCDTS{
		Type: protocol.AudioBreakoutRoomStateToCDTS, ConfID: e164, Version: version, Status: p.Status, RoomInfos: p.Rooms,
	}
}

// CDTSSubscriptions are the plan's AUDIO_BREAKOUT_SUBSCRIBE_BREAKOUT_ROOMS_TO_CDTS
// for users (each user's full list, empty when it has none), one message
// per room the users are in.
func (p *Plan) CDTSSubscriptions(e164 string, version int64, users []uint32) []protocol.BreakoutSubscribeToCDTS {
	users = slices.Sorted(slices.Values(users))
	var out []protocol.BreakoutSubscribeToCDTS
	at := map[uint32]int{}
	for _, u := range users {
		g, ok := p.Group[u]
		if !ok {
			g = MainRoom
		}
		i, ok := at[g]
		if !ok {
			i = len(out)
			at[g] = i
			out = append(out, protocol.BreakoutSubscribeToCDTS{
				Type: protocol.AudioBreakoutSubscribeToCDTS, ConfID: e164, Version: version, GroupID: g,
			})
		}
		subs := p.Subs[u]
		if subs == nil {
			subs = []protocol.BreakoutRoomSubscribeInfo{}
		}
		out[i].UserSubscribeInfos = append(out[i].UserSubscribeInfos, protocol.UserAudioSubscribeInfo{User: u, SubscribeInfos: subs})
	}
	return out
}

// MixerSubscription is the plan's AUDIO_BREAKOUT_SUBSCRIBE_BREAKOUT_ROOMS_TO_MIXER
// for one user: its full list, empty when it has none.
func (p *Plan) MixerSubscription(e164 string, version int64, user uint32) protocol.BreakoutSubscribeToMixer {
	rooms := p.MixerSubs[user]
	if rooms == nil {
		rooms = []protocol.UserAudioSubscribeInfoMixer{}
	}
	return protocol.BreakoutSubscribeToMixer{
		Type: protocol.AudioBreakoutSubscribeToMixer, ConfID: e164, Version: version, User: user, RoomInfos: rooms,
	}
}

// Delta is what changed between two plans: the items to send again.
type Delta struct {
	Mixer, CDTS        bool
	CDTSSubs, MixerSub []uint32
}

// Empty reports whether nothing changed.
func (d Delta) Empty() bool {
	return !d.Mixer && !d.CDTS && len(d.CDTSSubs) == 0 && len(d.MixerSub) == 0
}

// Merge adds another delta's items.
func (d *Delta) Merge(o Delta) {
	d.Mixer = d.Mixer || o.Mixer
	d.CDTS = d.CDTS || o.CDTS
	d.CDTSSubs = union(d.CDTSSubs, o.CDTSSubs)
	d.MixerSub = union(d.MixerSub, o.MixerSub)
}

func union(a, b []uint32) []uint32 {
	for _, v := range b {
		if !slices.Contains(a, v) {
			a = append(a, v)
		}
	}
	return a
}

// Diff says which items of the node's plan change from old to next. The
// room states go whole when anything in them changed (the seed has no
// partial update); subscriptions go per user. A subscription also goes
// again when the user changed room, since its groupID did.
func Diff(old, next *Plan) Delta {
	var d Delta
	d.Mixer = old.Status != next.Status || old.Record != next.Record || !reflect.DeepEqual(old.Mixer, next.Mixer)
	d.CDTS = old.Status != next.Status || !reflect.DeepEqual(old.Rooms, next.Rooms)
	for u := range keys(old.Subs, next.Subs) {
		if !reflect.DeepEqual(old.Subs[u], next.Subs[u]) || (len(next.Subs[u]) > 0 && old.Group[u] != next.Group[u]) {
			d.CDTSSubs = append(d.CDTSSubs, u)
		}
	}
	for u := range keys(old.MixerSubs, next.MixerSubs) {
		if !reflect.DeepEqual(old.MixerSubs[u], next.MixerSubs[u]) {
			d.MixerSub = append(d.MixerSub, u)
		}
	}
	slices.Sort(d.CDTSSubs)
	slices.Sort(d.MixerSub)
	return d
}

// Full is the delta that sends the whole plan (to a node that knows
// nothing of it).
func Full(p *Plan) Delta {
	d := Delta{Mixer: true, CDTS: true}
	for u := range p.Subs {
		d.CDTSSubs = append(d.CDTSSubs, u)
	}
	for u := range p.MixerSubs {
		d.MixerSub = append(d.MixerSub, u)
	}
	slices.Sort(d.CDTSSubs)
	slices.Sort(d.MixerSub)
	return d
}

func keys[V any](a, b map[uint32]V) map[uint32]struct{} {
	out := make(map[uint32]struct{}, len(a)+len(b))
	for k := range a {
		out[k] = struct{}{}
	}
	for k := range b {
		out[k] = struct{}{}
	}
	return out
}

// Messages are the node messages of a delta, from plan p at version.
func (p *Plan) Messages(e164 string, version int64, d Delta) []any {
	var out []any
	if d.Mixer {
		out = append(out, p.MixerState(e164, version))
	}
	if d.CDTS {
		out = append(out, p.CDTSState(e164, version))
	}
	for _, m := range p.CDTSSubscriptions(e164, version, d.CDTSSubs) {
		out = append(out, m)
	}
	for _, u := range slices.Sorted(slices.Values(d.MixerSub)) {
		out = append(out, p.MixerSubscription(e164, version, u))
	}
	return out
}

// Applied is what a node applied of a conference's breakout audio (the
// medianode simulator's AudioState has this shape).
type Applied struct {
	Mixer              *protocol.BreakoutRoomStateToMixer
	CDTS               *protocol.BreakoutRoomStateToCDTS
	CDTSSubscriptions  map[uint32][]protocol.BreakoutRoomSubscribeInfo
	MixerSubscriptions map[uint32][]protocol.UserAudioSubscribeInfoMixer
}

// Check compares what a node applied with the plan and says the first
// difference, or nil when the node follows the plan.
func (p *Plan) Check(a Applied) error {
	if a.Mixer == nil || a.CDTS == nil {
		return fmt.Errorf("the node has no room state (mixer %t, cdts %t)", a.Mixer != nil, a.CDTS != nil)
	}
	if a.Mixer.Status != p.Status || a.Mixer.RecordRoomID != p.Record || !reflect.DeepEqual(a.Mixer.RoomInfos, p.Mixer) {
		return fmt.Errorf("mixer state differs: node has status %d, record %d, rooms %+v (version %d); plan has status %d, record %d, rooms %+v",
			a.Mixer.Status, a.Mixer.RecordRoomID, a.Mixer.RoomInfos, a.Mixer.Version, p.Status, p.Record, p.Mixer)
	}
	if a.CDTS.Status != p.Status || !reflect.DeepEqual(a.CDTS.RoomInfos, p.Rooms) {
		return fmt.Errorf("cdts state differs: node has status %d, rooms %+v (version %d); plan has status %d, rooms %+v",
			a.CDTS.Status, a.CDTS.RoomInfos, a.CDTS.Version, p.Status, p.Rooms)
	}
	if !reflect.DeepEqual(nonNil(a.CDTSSubscriptions), p.Subs) {
		return fmt.Errorf("cdts subscriptions differ: node has %+v; plan has %+v", a.CDTSSubscriptions, p.Subs)
	}
	if !reflect.DeepEqual(nonNil(a.MixerSubscriptions), p.MixerSubs) {
		return fmt.Errorf("mixer subscriptions differ: node has %+v; plan has %+v", a.MixerSubscriptions, p.MixerSubs)
	}
	return nil
}

func nonNil[V any](m map[uint32]V) map[uint32]V {
	if m == nil {
		return map[uint32]V{}
	}
	return m
}
