package breakout

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/convene/convene/internal/protocol"
)

// The audio rules of seed 002 as data: a state in, the plan out.
func TestDeriveRules(t *testing.T) {
	on := func(id, cur, priv, audio uint32, subs ...Sub) *User {
		return &User{UserID: id, Preset: cur, Current: cur, Privilege: priv, Audio: audio, Channel: id, Session: "i/s", Subs: subs}
	}
	running := func(users ...*User) *State {
		st := newState("5100001")
		st.Meta.Active = true
		st.Meta.Rooms = append(st.Meta.Rooms, Room{ID: 10, MixerMode: protocol.MixerServer}, Room{ID: 20, MixerMode: protocol.MixerClient})
		for _, u := range users {
			st.Users[userKey(0, u.UserID)] = u
		}
		return st
	}
	const un, mu, cl = protocol.AudioUnmuted, protocol.AudioMuted, protocol.AudioClosed
	cases := []struct {
		name  string
		st    *State
		mixer map[uint32][]uint32 // mixed room -> speakers
		cdts  map[uint32][]uint32 // room -> user:privilege pairs
		subs  map[uint32][]protocol.BreakoutRoomSubscribeInfo
		msubs map[uint32][]uint32 // user -> mixer rooms
	}{
		{
			name:  "server mix to mixer and cdts, client mix to cdts only",
			st:    running(on(1, MainRoom, 3, un), on(2, 10, 3, un), on(3, 20, 3, un)),
			mixer: map[uint32][]uint32{MainRoom: {1}, 10: {2}},
			cdts:  map[uint32][]uint32{MainRoom: {1, 3}, 10: {2, 3}, 20: {3, 3}},
		},
		{
			name:  "privilege and audio state decide transmission",
			st:    running(on(1, MainRoom, 1, un), on(2, MainRoom, 3, mu), on(3, MainRoom, 3, cl), on(4, MainRoom, 2, un)),
			mixer: map[uint32][]uint32{MainRoom: {4}, 10: {}},
			cdts:  map[uint32][]uint32{MainRoom: {1, 1, 2, 1, 3, 0, 4, 2}, 10: {}, 20: {}},
		},
		{
			name: "subscriptions: cdts always, mixer for server-mix rooms the user speaks in",
			st: running(on(1, MainRoom, 3, un, Sub{10, 3}, Sub{20, 3}, Sub{MainRoom, 1}), on(2, MainRoom, 3, mu, Sub{10, 3}),
				on(5, 10, 3, un, Sub{10, 1})),
			mixer: map[uint32][]uint32{MainRoom: {1}, 10: {5}},
			cdts:  map[uint32][]uint32{MainRoom: {1, 3, 2, 1}, 10: {5, 3}, 20: {}},
			subs: map[uint32][]protocol.BreakoutRoomSubscribeInfo{
				1: {{RoomID: 10, Privilege: 3}, {RoomID: 20, Privilege: 3}},
				2: {{RoomID: 10, Privilege: 1}},
			},
			msubs: map[uint32][]uint32{1: {10}},
		},
		{
			name: "rooms closed: one room, the main one, with everyone",
			st: func() *State {
				st := running(on(1, MainRoom, 3, un), on(2, MainRoom, 3, un))
				st.Meta.Active = false
				return st
			}(),
			mixer: map[uint32][]uint32{MainRoom: {1, 2}},
			cdts:  map[uint32][]uint32{MainRoom: {1, 3, 2, 3}},
		},
		{
			name: "the recorded room is mixed even with client mix",
			st: func() *State {
				st := running(on(3, 20, 3, un))
				st.Meta.Record = 20
				return st
			}(),
			mixer: map[uint32][]uint32{MainRoom: {}, 10: {}, 20: {3}},
			cdts:  map[uint32][]uint32{MainRoom: {}, 10: {}, 20: {3, 3}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Derive(tc.st)
			mixer := map[uint32][]uint32{}
			for _, r := range p.Mixer {
				mixer[r.RoomID] = []uint32{}
				for _, u := range r.UserInfos {
					mixer[r.RoomID] = append(mixer[r.RoomID], u.User)
				}
			}
			if !reflect.DeepEqual(mixer, tc.mixer) {
				t.Errorf("mixer %v, want %v", mixer, tc.mixer)
			}
			cdts := map[uint32][]uint32{}
			for _, r := range p.Rooms {
				cdts[r.RoomID] = []uint32{}
				for _, u := range r.UserInfos {
					cdts[r.RoomID] = append(cdts[r.RoomID], u.UserID, u.Privilege)
				}
			}
			if !reflect.DeepEqual(cdts, tc.cdts) {
				t.Errorf("cdts %v, want %v", cdts, tc.cdts)
			}
			if tc.subs == nil {
				tc.subs = map[uint32][]protocol.BreakoutRoomSubscribeInfo{}
			}
			if !reflect.DeepEqual(p.Subs, tc.subs) {
				t.Errorf("cdts subscriptions %v, want %v", p.Subs, tc.subs)
			}
			msubs := map[uint32][]uint32{}
			for u, rs := range p.MixerSubs {
				for _, r := range rs {
					msubs[u] = append(msubs[u], r.RoomID)
				}
			}
			if tc.msubs == nil {
				tc.msubs = map[uint32][]uint32{}
			}
			if !reflect.DeepEqual(msubs, tc.msubs) {
				t.Errorf("mixer subscriptions %v, want %v", msubs, tc.msubs)
			}
		})
	}
}

// Diff sends what changed: room states whole, subscriptions per user, and
// the end of the rooms to the mixer again.
func TestDiff(t *testing.T) {
	st := newState("5100001")
	st.Meta.Active = true
	st.Meta.Rooms = append(st.Meta.Rooms, Room{ID: 10, MixerMode: protocol.MixerClient})
	st.Users["i1"] = &User{UserID: 1, Preset: MainRoom, Current: MainRoom, Privilege: 3, Audio: protocol.AudioMuted, Session: "s"}
	st.Users["i2"] = &User{UserID: 2, Preset: 10, Current: 10, Privilege: 3, Audio: protocol.AudioUnmuted, Session: "s"}
	p0 := Derive(st)

	moved := st.Clone()
	moved.Users["i1"].Current = 10 // a muted user into a client-mix room: cdts only
	if d := Diff(p0, Derive(moved)); d.Mixer || !d.CDTS || len(d.CDTSSubs)+len(d.MixerSub) > 0 {
		t.Errorf("a muted user's move: %+v", d)
	}
	sub := st.Clone()
	sub.Users["i1"].Subs = []Sub{{Room: 10, Privilege: 1}}
	if d := Diff(p0, Derive(sub)); d.Mixer || d.CDTS || !slices.Equal(d.CDTSSubs, []uint32{1}) || len(d.MixerSub) > 0 {
		t.Errorf("a listen-only subscription: %+v", d)
	}
	closed := sub.Clone()
	(rules{speakerLimit: 16}).finish(closed)
	d := Diff(Derive(sub), Derive(closed))
	if !d.Mixer || !d.CDTS || !slices.Equal(d.CDTSSubs, []uint32{1}) {
		t.Errorf("the rooms' end: %+v (the mixer and cdts are told again, the subscription ends)", d)
	}
	msgs := Derive(closed).Messages("5100001", 7, d)
	data, _ := json.Marshal(msgs[0])
	var m protocol.BreakoutRoomStateToMixer
	if err := json.Unmarshal(data, &m); err != nil || m.Type != protocol.AudioBreakoutRoomStateToMixer || m.Status != 0 || m.Version != 7 || len(m.RoomInfos) != 1 {
		t.Errorf("the mixer's message at the end: %s", data)
	}
	if e := (Delta{}); !e.Empty() || !Diff(p0, p0).Empty() {
		t.Error("no change is an empty delta")
	}
}
