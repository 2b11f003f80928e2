package breakout_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/protocol"
)

// rooms10and20 starts rooms 10 (server mix) and 20 (client mix) with the
// users listed and moves them in.
func (e *env) rooms10and20(in *instance, e164 string, host *user, in10, in20 []*user, watchers ...*user) {
	e.t.Helper()
	var i10, i20 []protocol.BreakoutRoomUserItem
	for _, u := range in10 {
		i10 = append(i10, item(u.id, u.ums))
	}
	for _, u := range in20 {
		i20 = append(i20, item(u.id, u.ums))
	}
	host.send(startReq(e164, host.id, []protocol.BreakoutRoomInfo{room(10, protocol.MixerServer, i10...), room(20, protocol.MixerClient, i20...)}))
	host.expect(protocol.BMSBreakoutRoomsStartNotify, status(0))
	for _, w := range watchers {
		w.expect(protocol.BMSBreakoutRoomsStartNotify, status(0))
	}
	for _, g := range []struct {
		us   []*user
		room uint32
	}{{in10, 10}, {in20, 20}} {
		for _, u := range g.us {
			host.send(move(e164, host.id, u.id, u.ums, g.room))
			host.expect(protocol.BMSSetUserBreakoutRoomNotify, status(0))
		}
	}
}

func subscribe(e164 string, user uint32, subs ...protocol.BreakoutRoomSubscribeInfo) protocol.UserSubscribeInBreakoutRoom {
	if subs == nil {
		subs = []protocol.BreakoutRoomSubscribeInfo{}
	}
	return protocol.UserSubscribeInBreakoutRoom{Type: protocol.AudioUserSubscribeInBreakout, ConfID: e164, User: user, SubscribeInfos: subs}
}

func sub(room, priv uint32) protocol.BreakoutRoomSubscribeInfo {
	return protocol.BreakoutRoomSubscribeInfo{RoomID: room, Privilege: priv}
}

func hearing(t *testing.T, in *instance, e164 string) map[uint32]breakout.Hearing {
	t.Helper()
	var v breakout.AudioView
	if code, eb := rest(t, in, "GET", "/v1/conferences/"+e164+"/breakout/audio", token, nil, &v); code != 200 {
		t.Fatalf("GET audio: %d %+v", code, eb)
	}
	out := map[uint32]breakout.Hearing{}
	for _, h := range v.Hearing {
		out[h.UserID] = h
	}
	return out
}

// Subscriptions to other rooms are full updates per user: cdts always
// hears of them, the mixer only for server-mix rooms the user speaks in.
func TestSubscriptions(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	teacher := e.connect(in, e164, who{id: 1, host: true, audio: protocol.AudioUnmuted})
	s1 := e.connect(in, e164, who{id: 2, audio: protocol.AudioUnmuted})
	s2 := e.connect(in, e164, who{id: 3, audio: protocol.AudioUnmuted})
	e.rooms10and20(in, e164, teacher, []*user{s1}, []*user{s2})

	teacher.send(subscribe(e164, 1, sub(10, 0x03), sub(20, 0x01)))
	for _, u := range []*user{teacher, s1, s2} {
		n := decode[protocol.UserSubscribeInBreakoutRoomNotify](t, u.expect(protocol.AudioUserSubscribeInBreakoutNotify, nil))
		if n.StatusCode != 0 || n.User != 1 || len(n.SubscribeInfos) != 2 {
			t.Fatalf("user %d got %+v", u.id, n)
		}
	}
	_, p := e.waitPlan(in, e164)
	if got := p.Subs[1]; len(got) != 2 || got[0] != sub(10, 3) || got[1] != sub(20, 1) {
		t.Fatalf("cdts subscriptions of the teacher: %+v", got)
	}
	if got := p.MixerSubs[1]; len(got) != 1 || got[0].RoomID != 10 || got[0].Info.User != 1 {
		t.Fatalf("mixer subscriptions of the teacher: %+v (want room 10 only: server mix, speaks)", got)
	}
	h := hearing(t, in, e164)
	if !slices.Equal(h[1].Hears, []uint32{2, 3}) || !slices.Equal(h[2].Hears, []uint32{1}) || !slices.Equal(h[3].Hears, []uint32{}) {
		t.Fatalf("who hears whom: %+v", h)
	}

	// A full update: only room 20, speaking; its own room is dropped.
	teacher.send(subscribe(e164, 1, sub(20, 0x03), sub(breakout.MainRoom, 0x01)))
	n := decode[protocol.UserSubscribeInBreakoutRoomNotify](t, s2.expect(protocol.AudioUserSubscribeInBreakoutNotify, nil))
	if len(n.SubscribeInfos) != 1 || n.SubscribeInfos[0] != sub(20, 3) {
		t.Fatalf("after the full update: %+v", n)
	}
	_, p = e.waitPlan(in, e164)
	if _, ok := p.MixerSubs[1]; ok || len(p.Subs[1]) != 1 {
		t.Fatalf("after the full update: cdts %+v, mixer %+v (room 20 mixes on the clients)", p.Subs[1], p.MixerSubs[1])
	}
	if h := hearing(t, in, e164); !slices.Equal(h[3].Hears, []uint32{1}) || !slices.Equal(h[2].Hears, []uint32{}) {
		t.Fatalf("who hears whom after the update: %+v", h)
	}

	for _, tc := range []struct {
		name string
		u    *user
		req  protocol.UserSubscribeInBreakoutRoom
		want uint32
	}{
		{"unknown room", teacher, subscribe(e164, 1, sub(99, 1)), protocol.BreakoutUnknownRoom},
		{"no privilege", teacher, subscribe(e164, 1, sub(10, 0)), protocol.BreakoutBadRequest},
		{"another user's", s1, subscribe(e164, 3, sub(10, 1)), protocol.BreakoutNotHost},
		{"a user not here", teacher, subscribe(e164, 42, sub(10, 1)), protocol.BreakoutUnknownUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.u.send(tc.req)
			tc.u.expect(protocol.AudioUserSubscribeInBreakoutNotify, status(tc.want))
		})
	}

	// The rooms' end ends the subscriptions.
	teacher.send(stop(e164, 1, 0))
	s1.expect(protocol.BMSBreakoutRoomsStopNotify, status(0))
	_, p = e.waitPlan(in, e164)
	if len(p.Subs) != 0 || len(p.MixerSubs) != 0 {
		t.Fatalf("subscriptions after the end: %+v %+v", p.Subs, p.MixerSubs)
	}
	teacher.send(subscribe(e164, 1, sub(10, 1)))
	teacher.expect(protocol.AudioUserSubscribeInBreakoutNotify, status(protocol.BreakoutNotActive))
}

func mute(e164 string, op, user, mode, group uint32) protocol.UserMute {
	return protocol.UserMute{Type: protocol.AudioUserMute, ConfID: e164, OperatorID: op, UserID: user, Mode: mode, GroupID: group}
}

func changed(n protocol.UserMuteNotify) []uint32 {
	out := []uint32{}
	for _, i := range n.UserInfos {
		out = append(out, i.UserID)
	}
	return out
}

// Mute-all acts on the main room only, and everyone is told; the group
// modes act on the room given as groupID.
func TestMuteModes(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true, audio: protocol.AudioUnmuted})
	m2 := e.connect(in, e164, who{id: 2, audio: protocol.AudioUnmuted})
	r3 := e.connect(in, e164, who{id: 3, audio: protocol.AudioUnmuted})
	r4 := e.connect(in, e164, who{id: 4, audio: protocol.AudioUnmuted})
	e.rooms10and20(in, e164, host, []*user{r3, r4}, nil)

	host.send(mute(e164, 1, 0, protocol.MuteAll, 0))
	for _, u := range []*user{host, m2, r3} {
		n := decode[protocol.UserMuteNotify](t, u.expect(protocol.AudioUserMuteNotify, nil))
		if n.StatusCode != 0 || !slices.Equal(changed(n), []uint32{2}) {
			t.Fatalf("user %d: mute-all changed %v, want the main room's participant 2 only", u.id, changed(n))
		}
	}
	st, _ := e.waitPlan(in, e164)
	if st.Users["i3"].Audio != protocol.AudioUnmuted {
		t.Fatal("mute-all muted a breakout room")
	}

	host.send(mute(e164, 1, 0, protocol.MuteGroupAll, 10))
	n := decode[protocol.UserMuteNotify](t, r4.expect(protocol.AudioUserMuteNotify, mode(t, protocol.MuteGroupAll)))
	if !slices.Equal(changed(n), []uint32{3, 4}) || n.GroupID != 10 {
		t.Fatalf("group mute-all of room 10: %+v", n)
	}
	_, p := e.waitPlan(in, e164)
	if got := speakers(p.Mixer, 10); len(got) != 0 {
		t.Fatalf("room 10 still mixes %v", got)
	}
	host.send(mute(e164, 1, 0, protocol.UnmuteGroupAll, 10))
	n = decode[protocol.UserMuteNotify](t, r3.expect(protocol.AudioUserMuteNotify, mode(t, protocol.UnmuteGroupAll)))
	if !slices.Equal(changed(n), []uint32{3, 4}) {
		t.Fatalf("group unmute-all of room 10: %+v", n)
	}
	for _, tc := range []struct {
		name string
		u    *user
		req  protocol.UserMute
		want uint32
	}{
		{"participant mutes itself", r3, mute(e164, 3, 3, protocol.MuteUser, 0), 0},
		{"participant mutes another", r3, mute(e164, 3, 4, protocol.MuteUser, 0), protocol.BreakoutNotHost},
		{"participant mutes all", r3, mute(e164, 3, 0, protocol.MuteAll, 0), protocol.BreakoutNotHost},
		{"group of no room", host, mute(e164, 1, 0, protocol.MuteGroupAll, 99), protocol.BreakoutUnknownRoom},
		{"unknown mode", host, mute(e164, 1, 0, 9, 0), protocol.BreakoutBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.u.send(tc.req)
			tc.u.expect(protocol.AudioUserMuteNotify, status(tc.want))
		})
	}
	e.waitPlan(in, e164)
}

// The main room has at most 16 speakers: who comes in beyond is muted,
// an unmute beyond is refused, and everyone coming back at the end of the
// rooms is muted beyond the limit.
func TestSpeakerLimit(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true, audio: protocol.AudioMuted})
	var us []*user
	for i := range 20 {
		us = append(us, e.connect(in, e164, who{id: uint32(100 + i), audio: protocol.AudioUnmuted}))
	}
	st, p := e.waitPlan(in, e164)
	if got := speakers(p.Mixer, breakout.MainRoom); len(got) != 16 {
		t.Fatalf("%d speakers in the main room", len(got))
	}
	for i, u := range us {
		want := uint32(protocol.AudioUnmuted)
		if i >= 16 {
			want = protocol.AudioMuted
		}
		if got := st.Users[fmt.Sprintf("i%d", u.id)].Audio; got != want {
			t.Fatalf("user %d audio %d, want %d", u.id, got, want)
		}
	}
	us[17].send(mute(e164, us[17].id, us[17].id, protocol.UnmuteUser, 0))
	us[17].expect(protocol.AudioUserMuteNotify, status(protocol.BreakoutSpeakerLimit))

	// Six speakers go to room 10; four of the muted unmute.
	e.rooms10and20(in, e164, host, us[:6], nil)
	for _, u := range us[16:] {
		u.send(mute(e164, u.id, u.id, protocol.UnmuteUser, 0))
		n := decode[protocol.UserMuteNotify](t, u.expect(protocol.AudioUserMuteNotify, func(m breakout.Message) bool {
			return decode[protocol.UserMuteNotify](t, m).UserID == u.id
		}))
		if n.StatusCode != 0 || !slices.Equal(changed(n), []uint32{u.id}) {
			t.Fatalf("user %d unmuting: %+v", u.id, n)
		}
	}
	_, p = e.waitPlan(in, e164)
	if got := speakers(p.Mixer, breakout.MainRoom); len(got) != 14 {
		t.Fatalf("%d speakers in the main room, want 14", len(got))
	}
	// Everyone comes back: the newcomers beyond 16 are muted, and told.
	host.send(stop(e164, 1, 0))
	host.expect(protocol.BMSBreakoutRoomsStopNotify, status(0))
	// (us[0] heard the four muted on joining first, one by one.)
	n := decode[protocol.UserAudioStateNotify](t, us[0].expect(protocol.AudioUserAudioStateNotify, func(m breakout.Message) bool {
		return len(decode[protocol.UserAudioStateNotify](t, m).UserInfos) > 1
	}))
	if n.StatusCode != protocol.BreakoutSpeakerLimit || len(n.UserInfos) != 4 {
		t.Fatalf("muted on return: %+v", n)
	}
	_, p = e.waitPlan(in, e164)
	if got := speakers(p.Mixer, breakout.MainRoom); len(got) != 16 {
		t.Fatalf("%d speakers in the main room after the end, want 16", len(got))
	}
	// Opening one's audio unmuted at the limit opens it muted.
	host.send(protocol.UserAudioState{Type: protocol.AudioUserAudioState, ConfID: e164, UserID: 1, AudioState: protocol.AudioUnmuted})
	a := decode[protocol.UserAudioStateNotify](t, host.expect(protocol.AudioUserAudioStateNotify, nil))
	if a.StatusCode != protocol.BreakoutSpeakerLimit || a.UserInfos[0].AudioState != protocol.AudioMuted {
		t.Fatalf("audio opened at the limit: %+v", a)
	}
}

// Phone users stay in the main room: no move, no subscription; a start
// that puts one in a room leaves it in the main room.
func TestPhoneUsersStayInTheMainRoom(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true})
	phone := e.connect(in, e164, who{id: 2, client: protocol.ClientPhone, audio: protocol.AudioUnmuted})
	host.send(startReq(e164, 1, []protocol.BreakoutRoomInfo{room(10, 0, protocol.BreakoutRoomUserItem{UserID: 2, UserCurrentRoomID: 10})}))
	n := decode[protocol.BreakoutRoomsStartNotify](t, phone.expect(protocol.BMSBreakoutRoomsStartNotify, status(0)))
	if it := n.RoomInfos[1].UserItems[0]; it.UserID != 2 || it.UserPresetRoomID != 10 || it.UserCurrentRoomID != breakout.MainRoom {
		t.Fatalf("phone user after start: %+v", it)
	}
	host.send(move(e164, 1, 2, 0, 10))
	host.expect(protocol.BMSSetUserBreakoutRoomNotify, status(protocol.BreakoutPhoneMainOnly))
	phone.send(move(e164, 2, 2, 0, 10))
	phone.expect(protocol.BMSSetUserBreakoutRoomNotify, status(protocol.BreakoutPhoneMainOnly))
	phone.send(subscribe(e164, 2, sub(10, 1)))
	phone.expect(protocol.AudioUserSubscribeInBreakoutNotify, status(protocol.BreakoutPhoneMainOnly))
	_, p := e.waitPlan(in, e164)
	if !slices.Contains(members(p.Rooms, breakout.MainRoom), 2) {
		t.Fatal("the phone user is not in the main room")
	}
}

// Privilege and audio state together decide transmission: listen-only or
// muted users are not mixed, closed audio hears nothing.
func TestPrivilegeAndAudioState(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true, audio: protocol.AudioUnmuted})
	e.connect(in, e164, who{id: 2, audio: protocol.AudioUnmuted})
	e.connect(in, e164, who{id: 3, audio: protocol.AudioMuted})
	e.connect(in, e164, who{id: 4, audio: protocol.AudioClosed})
	e.connect(in, e164, who{id: 5, audio: protocol.AudioUnmuted})
	host.send(startReq(e164, 1, []protocol.BreakoutRoomInfo{room(10, 0)}))
	host.expect(protocol.BMSBreakoutRoomsStartNotify, status(0))
	// The host makes user 2 listen-only.
	host.send(protocol.SetUserBreakoutRoom{Type: protocol.BMSSetUserBreakoutRoom, ConfID: e164, OperatorID: 1,
		DestItem: protocol.BreakoutRoomUserItem{UserID: 2, Privilege: protocol.BreakoutListen}})
	n := decode[protocol.SetUserBreakoutRoomNotify](t, host.expect(protocol.BMSSetUserBreakoutRoomNotify, nil))
	if n.StatusCode != 0 || n.DestItem.Privilege != protocol.BreakoutListen || n.DestItem.UserCurrentRoomID != breakout.MainRoom {
		t.Fatalf("privilege change: %+v", n)
	}
	_, p := e.waitPlan(in, e164)
	if got := speakers(p.Mixer, breakout.MainRoom); !slices.Equal(got, []uint32{1, 5}) {
		t.Fatalf("mixed %v, want the unmuted speakers 1 and 5", got)
	}
	want := map[uint32]uint32{1: 3, 2: 1, 3: 1, 4: 0, 5: 3}
	for _, r := range p.Rooms {
		for _, u := range r.UserInfos {
			if u.Privilege != want[u.UserID] {
				t.Fatalf("cdts privilege of user %d is %d, want %d", u.UserID, u.Privilege, want[u.UserID])
			}
		}
	}
	h := hearing(t, in, e164)
	for id, hears := range map[uint32][]uint32{1: {5}, 2: {1, 5}, 3: {1, 5}, 4: {}, 5: {1}} {
		if !slices.Equal(h[id].Hears, hears) {
			t.Fatalf("user %d hears %v, want %v", id, h[id].Hears, hears)
		}
	}
}

// The recorded room is mixed, even a client-mix one; the rooms' end gives
// the recording back to the main room.
func TestRecordARoom(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true})
	p2 := e.connect(in, e164, who{id: 2, audio: protocol.AudioUnmuted})
	e.rooms10and20(in, e164, host, nil, []*user{p2})
	p2.send(protocol.RecordBreakoutRoom{Type: protocol.AudioRecordBreakoutRoom, ConfID: e164, RoomID: 20})
	p2.expect(protocol.AudioRecordBreakoutRoomNotify, status(protocol.BreakoutNotHost))
	host.send(protocol.RecordBreakoutRoom{Type: protocol.AudioRecordBreakoutRoom, ConfID: e164, RoomID: 99})
	host.expect(protocol.AudioRecordBreakoutRoomNotify, status(protocol.BreakoutUnknownRoom))
	host.send(protocol.RecordBreakoutRoom{Type: protocol.AudioRecordBreakoutRoom, ConfID: e164, RoomID: 20})
	n := decode[protocol.RecordBreakoutRoomNotify](t, p2.expect(protocol.AudioRecordBreakoutRoomNotify, nil))
	if n.StatusCode != 0 || n.RoomID != 20 {
		t.Fatalf("record: %+v", n)
	}
	_, p := e.waitPlan(in, e164)
	if p.Record != 20 || !slices.Equal(speakers(p.Mixer, 20), []uint32{2}) {
		t.Fatalf("recording room 20: record %d, mixer %+v", p.Record, p.Mixer)
	}
	host.send(stop(e164, 1, 0))
	host.expect(protocol.BMSBreakoutRoomsStopNotify, status(0))
	if _, p = e.waitPlan(in, e164); p.Record != breakout.MainRoom {
		t.Fatalf("after the end the recording takes room %d", p.Record)
	}
}

func mode(t *testing.T, m uint32) func(breakout.Message) bool {
	return func(msg breakout.Message) bool { return decode[protocol.UserMuteNotify](t, msg).Mode == m }
}
