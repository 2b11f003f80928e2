package breakout_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// Start, join the preset rooms, stop now: every client hears every step;
// the node is told server-mix rooms on mixer and cdts, client-mix rooms on
// cdts only; at the end everyone is back in the main room, the mixer is
// told again, and the plan stays for the host to start again.
func TestStartJoinStop(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true, audio: protocol.AudioUnmuted})
	a := e.connect(in, e164, who{id: 2, ums: 902, audio: protocol.AudioUnmuted})
	b := e.connect(in, e164, who{id: 3, audio: protocol.AudioUnmuted})
	c := e.connect(in, e164, who{id: 4, audio: protocol.AudioMuted})
	all := []*user{host, a, b, c}

	before := time.Now().Unix()
	host.send(startReq(e164, 1, []protocol.BreakoutRoomInfo{
		room(10, protocol.MixerServer, item(0, 902), item(3, 0)),
		room(20, protocol.MixerClient, item(4, 0)),
	}))
	for _, u := range all {
		m := u.expect(protocol.BMSBreakoutRoomsStartNotify, nil)
		n := decode[protocol.BreakoutRoomsStartNotify](t, m)
		if n.StatusCode != 0 || n.Timestamp < uint64(before) || n.UserID != 1 || len(n.RoomInfos) != 3 {
			t.Fatalf("user %d got %+v", u.id, n)
		}
		if n.RoomInfos[0].RoomID != breakout.MainRoom || len(n.RoomInfos[1].UserItems) != 2 {
			t.Fatalf("user %d got rooms %+v", u.id, n.RoomInfos)
		}
	}
	// Each participant joins its preset room by itself.
	for _, p := range []struct {
		u    *user
		room uint32
	}{{a, 10}, {b, 10}, {c, 20}} {
		p.u.send(move(e164, p.u.id, p.u.id, 0, p.room))
		for _, u := range all {
			n := decode[protocol.SetUserBreakoutRoomNotify](t, u.expect(protocol.BMSSetUserBreakoutRoomNotify, nil))
			if n.StatusCode != 0 || n.DestItem.UserID != p.u.id || n.DestItem.UserCurrentRoomID != p.room || n.DestItem.UserPresetRoomID != p.room {
				t.Fatalf("user %d got %+v", u.id, n)
			}
		}
	}
	_, p := e.waitPlan(in, e164)
	if p.Status != 1 {
		t.Fatalf("plan status %d", p.Status)
	}
	mixRooms := []uint32{}
	for _, r := range p.Mixer {
		mixRooms = append(mixRooms, r.RoomID)
	}
	if !slices.Equal(mixRooms, []uint32{breakout.MainRoom, 10}) {
		t.Fatalf("the mixer mixes rooms %v, want the main room and the server-mix room 10 only", mixRooms)
	}
	if got := speakers(p.Mixer, 10); !slices.Equal(got, []uint32{2, 3}) {
		t.Fatalf("room 10 speakers %v", got)
	}
	if got := members(p.Rooms, 20); !slices.Equal(got, []uint32{4}) {
		t.Fatalf("cdts room 20 has %v", got)
	}

	host.send(stop(e164, 1, 0))
	for _, u := range all {
		n := decode[protocol.BreakoutRoomsStopNotify](t, u.expect(protocol.BMSBreakoutRoomsStopNotify, nil))
		if n.StatusCode != 0 || n.DelayTime != 0 {
			t.Fatalf("user %d got %+v", u.id, n)
		}
	}
	st, p := e.waitPlan(in, e164)
	if p.Status != 0 || len(p.Rooms) != 1 || len(p.Mixer) != 1 || p.Mixer[0].RoomID != breakout.MainRoom {
		t.Fatalf("after stop the plan is %+v", p)
	}
	if got := speakers(p.Mixer, breakout.MainRoom); !slices.Equal(got, []uint32{1, 2, 3}) {
		t.Fatalf("main room speakers after stop %v", got)
	}
	// Closing told the mixer again, with status 0.
	if !slices.ContainsFunc(e.node(e164).AudioLog(e164), func(m medianodeMsg) bool {
		return m.Type == protocol.AudioBreakoutRoomStateToMixer && decodeRaw[protocol.BreakoutRoomStateToMixer](t, m.Data).Status == 0 &&
			m.Version == st.Version
	}) {
		t.Fatal("the mixer was not told the rooms closed")
	}
	// The plan stays: the list still has the rooms and presets.
	host.send(protocol.GetBreakoutRoomsList{Type: protocol.BMSGetBreakoutRoomsList, ConfID: e164, UserID: 1})
	l := decode[protocol.GetBreakoutRoomsListNotify](t, host.expect(protocol.BMSGetBreakoutRoomsListNotify, nil))
	if l.Status != 0 || len(l.RoomInfos) != 3 || len(l.RoomInfos[1].UserItems) != 2 || l.RoomInfos[1].UserItems[0].UserCurrentRoomID != breakout.MainRoom {
		t.Fatalf("list after stop: %+v", l)
	}
	// The host edits and starts again.
	host.send(startReq(e164, 1, []protocol.BreakoutRoomInfo{room(10, protocol.MixerServer, item(4, 0))}))
	n := decode[protocol.BreakoutRoomsStartNotify](t, c.expect(protocol.BMSBreakoutRoomsStartNotify, nil))
	if n.StatusCode != 0 || len(n.RoomInfos) != 2 {
		t.Fatalf("second start: %+v", n)
	}
	e.waitPlan(in, e164)
}

func speakers(rooms []protocol.BreakoutRoomUserInfoMixer, id uint32) []uint32 {
	out := []uint32{}
	for _, r := range rooms {
		if r.RoomID == id {
			for _, u := range r.UserInfos {
				out = append(out, u.User)
			}
		}
	}
	return out
}

func members(rooms []protocol.BreakoutRoomAudioInfo, id uint32) []uint32 {
	out := []uint32{}
	for _, r := range rooms {
		if r.RoomID == id {
			for _, u := range r.UserInfos {
				out = append(out, u.UserID)
			}
		}
	}
	return out
}

// Only the host starts, stops and moves others; a participant moves
// itself, to its preset room or back to the main room.
func TestOnlyTheHost(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true})
	p := e.connect(in, e164, who{id: 2})
	q := e.connect(in, e164, who{id: 3})

	p.send(startReq(e164, 2, []protocol.BreakoutRoomInfo{room(10, 0)}))
	p.expect(protocol.BMSBreakoutRoomsStartNotify, status(protocol.BreakoutNotHost))

	host.send(startReq(e164, 1, []protocol.BreakoutRoomInfo{room(10, 0, item(2, 0)), room(20, 0, item(3, 0))}))
	p.expect(protocol.BMSBreakoutRoomsStartNotify, status(0))
	host.send(startReq(e164, 1, []protocol.BreakoutRoomInfo{room(10, 0)}))
	host.expect(protocol.BMSBreakoutRoomsStartNotify, status(protocol.BreakoutAlreadyActive))

	cases := []struct {
		name string
		u    *user
		req  protocol.SetUserBreakoutRoom
		want uint32
	}{
		{"participant moves another", p, move(e164, 2, 3, 0, 20), protocol.BreakoutNotHost},
		{"participant to a room not its preset", p, move(e164, 2, 2, 0, 20), protocol.BreakoutNotAllowed},
		{"participant to an unknown room", p, move(e164, 2, 2, 0, 99), protocol.BreakoutUnknownRoom},
		{"unknown user", host, move(e164, 1, 77, 0, 10), protocol.BreakoutUnknownUser},
		{"participant to its preset", p, move(e164, 2, 2, 0, 10), 0},
		{"participant back to the main room", p, move(e164, 2, 2, 0, 0), 0},
		{"host moves another anywhere", host, move(e164, 1, 2, 0, 20), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.u.send(tc.req)
			// Refusals go to the requester only; a success is the
			// broadcast of this very move.
			n := decode[protocol.SetUserBreakoutRoomNotify](t, tc.u.expect(protocol.BMSSetUserBreakoutRoomNotify, func(m breakout.Message) bool {
				n := decode[protocol.SetUserBreakoutRoomNotify](t, m)
				return n.StatusCode != 0 || (n.OperatorID == tc.req.OperatorID && n.DestItem.UserID == tc.req.DestItem.UserID)
			}))
			if n.StatusCode != tc.want {
				t.Fatalf("statusCode %d (%s), want %d", n.StatusCode, n.Message, tc.want)
			}
			if tc.want != 0 && n.Message == "" {
				t.Fatal("a refusal must say why")
			}
		})
	}
	// Leaving (room 0) puts the user in the main room.
	p.send(move(e164, 2, 2, 0, 0))
	n := decode[protocol.SetUserBreakoutRoomNotify](t, q.expect(protocol.BMSSetUserBreakoutRoomNotify, func(m breakout.Message) bool {
		return decode[protocol.SetUserBreakoutRoomNotify](t, m).DestItem.UserCurrentRoomID == breakout.MainRoom
	}))
	if n.DestItem.UserID != 2 {
		t.Fatalf("got %+v", n)
	}
	p.send(stop(e164, 2, 0))
	p.expect(protocol.BMSBreakoutRoomsStopNotify, status(protocol.BreakoutNotHost))
	host.send(stop(e164, 1, 0))
	q.expect(protocol.BMSBreakoutRoomsStopNotify, status(0))
	host.send(stop(e164, 1, 0))
	host.expect(protocol.BMSBreakoutRoomsStopNotify, status(protocol.BreakoutNotActive))
	// With the rooms closed, nobody joins one.
	host.send(move(e164, 1, 2, 0, 10))
	host.expect(protocol.BMSSetUserBreakoutRoomNotify, status(protocol.BreakoutNotActive))
}

// While the rooms run, a client entering the conference gets the list with
// the conference's information; otherwise only the information.
func TestConfInfoPushesTheList(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true})

	late := e.dial(in, e164, who{id: 5, ums: 905})
	late.send(protocol.ConfInfoRequest{Type: protocol.BMSConfInfoRequest, ConfID: e164, UserID: 5})
	info := decode[protocol.ConfInfoNotify](t, late.expect(protocol.BMSConfInfoNotify, nil))
	if info.Status != 0 || info.UserID != 5 || info.UserUmsID != 905 {
		t.Fatalf("info before start: %+v", info)
	}
	host.send(startReq(e164, 1, []protocol.BreakoutRoomInfo{room(10, 0, item(0, 905), item(0, 906))}))
	late.expect(protocol.BMSBreakoutRoomsStartNotify, status(0))

	later := e.dial(in, e164, who{id: 6, ums: 906})
	later.send(protocol.ConfInfoRequest{Type: protocol.BMSConfInfoRequest, ConfID: e164, UserID: 6})
	info = decode[protocol.ConfInfoNotify](t, later.next())
	if info.Type != protocol.BMSConfInfoNotify || info.Status != 1 {
		t.Fatalf("info while running: %+v", info)
	}
	l := decode[protocol.GetBreakoutRoomsListNotify](t, later.next())
	if l.Type != protocol.BMSGetBreakoutRoomsListNotify || l.Status != 1 || len(l.RoomInfos) != 2 {
		t.Fatalf("list pushed: %+v", l)
	}
	// The ums user of the plan got its user id on entering.
	var mine *protocol.BreakoutRoomUserItem
	for i, it := range l.RoomInfos[1].UserItems {
		if it.UserUmsID == 906 {
			mine = &l.RoomInfos[1].UserItems[i]
		}
	}
	if mine == nil || mine.UserID != 6 || mine.UserCurrentRoomID != breakout.MainRoom || mine.UserPresetRoomID != 10 {
		t.Fatalf("ums user 906 in the list: %+v", mine)
	}
}

// A user leaving the conference: a ums user keeps its entry with current
// room 0, another is removed; nobody is told.
func TestUserLeavesTheConference(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true})
	ums := e.connect(in, e164, who{id: 2, ums: 902})
	plain := e.connect(in, e164, who{id: 3})
	watcher := e.connect(in, e164, who{id: 4})
	host.send(startReq(e164, 1, []protocol.BreakoutRoomInfo{room(10, 0, item(2, 902), item(3, 0))}))
	watcher.expect(protocol.BMSBreakoutRoomsStartNotify, status(0))
	ums.send(move(e164, 2, 2, 902, 10))
	watcher.expect(protocol.BMSSetUserBreakoutRoomNotify, nil)
	plain.send(move(e164, 3, 3, 0, 10))
	watcher.expect(protocol.BMSSetUserBreakoutRoomNotify, nil)

	_ = ums.c.Close()
	_ = plain.c.Close()
	testkit.Eventually(t, wait, testkit.Cond("both users out", func() bool {
		st, _, err := in.svc.Snapshot(t.Context(), e164)
		if err != nil {
			t.Fatal(err)
		}
		online := 0
		for _, u := range st.Users {
			if u.Online() {
				online++
			}
		}
		return online == 2
	}))
	st, _ := e.waitPlan(in, e164)
	kept := st.Users["u902"]
	if kept == nil || kept.Current != 0 || kept.Preset != 10 || kept.UserID != 2 {
		t.Fatalf("ums user after leaving: %+v", kept)
	}
	if u := st.Users["i3"]; u != nil {
		t.Fatalf("user 3 without ums id is still in the plan: %+v", u)
	}
	// Nobody was told: the next thing the watcher hears is the host's.
	host.send(protocol.RecordBreakoutRoom{Type: protocol.AudioRecordBreakoutRoom, ConfID: e164, RoomID: 10})
	if m := watcher.next(); m.Type != protocol.AudioRecordBreakoutRoomNotify {
		t.Fatalf("the watcher heard %s (%s) first", m.Type, m.Data)
	}
	// The ums user comes back with another user id: its entry is its own.
	back := e.connect(in, e164, who{id: 12, ums: 902})
	host.send(move(e164, 1, 0, 902, 10))
	n := decode[protocol.SetUserBreakoutRoomNotify](t, back.expect(protocol.BMSSetUserBreakoutRoomNotify, nil))
	if n.StatusCode != 0 || n.DestItem.UserID != 12 || n.DestItem.UserCurrentRoomID != 10 {
		t.Fatalf("ums user back: %+v", n)
	}
}

// Clients of one conference on two instances hear the same notifications,
// in the order the operations happened.
func TestClientsOnTwoInstances(t *testing.T) {
	e := start(t, setup{insts: 2})
	a, b := e.insts[0], e.insts[1]
	e164 := e.conference()
	host := e.connect(a, e164, who{id: 1, host: true})
	u1 := e.connect(a, e164, who{id: 2})
	u2 := e.connect(b, e164, who{id: 3})
	host.send(startReq(e164, 1, []protocol.BreakoutRoomInfo{room(10, 0, item(2, 0), item(3, 0)), room(20, 1)}))
	for _, u := range []*user{host, u1, u2} {
		u.expect(protocol.BMSBreakoutRoomsStartNotify, status(0))
	}
	// u2 (on b) moves itself; everyone (on a and b) hears it.
	u2.send(move(e164, 3, 3, 0, 10))
	for _, u := range []*user{host, u1, u2} {
		n := decode[protocol.SetUserBreakoutRoomNotify](t, u.expect(protocol.BMSSetUserBreakoutRoomNotify, nil))
		if n.DestItem.UserID != 3 || n.DestItem.UserCurrentRoomID != 10 {
			t.Fatalf("user %d heard %+v", u.id, n)
		}
	}
	// The host (on a) moves u2 twice; u2 hears both, in order.
	host.send(move(e164, 1, 3, 0, 20))
	host.send(move(e164, 1, 3, 0, breakout.MainRoom))
	for _, want := range []uint32{20, breakout.MainRoom} {
		n := decode[protocol.SetUserBreakoutRoomNotify](t, u2.expect(protocol.BMSSetUserBreakoutRoomNotify, nil))
		if n.DestItem.UserCurrentRoomID != want {
			t.Fatalf("u2 heard room %d, want %d", n.DestItem.UserCurrentRoomID, want)
		}
	}
	e.waitPlan(b, e164)
}

// A user who connects again replaces its first connection and keeps its
// room; the first connection is closed.
func TestReconnectReplacesTheSession(t *testing.T) {
	e := start(t, setup{insts: 2})
	a, b := e.insts[0], e.insts[1]
	e164 := e.conference()
	host := e.connect(a, e164, who{id: 1, host: true})
	first := e.connect(a, e164, who{id: 2, ums: 902})
	e.rooms10and20(a, e164, host, []*user{first}, nil, first)
	second := e.connect(b, e164, who{id: 2, ums: 902})
	if code := websocket.CloseStatus(first.closed()); code != 4002 {
		t.Fatalf("the first connection closed with %d, want 4002 (replaced)", code)
	}
	st, _ := e.waitPlan(b, e164)
	if u := st.Users["u902"]; u == nil || !u.Online() || u.Current != 10 || !strings.HasPrefix(u.Session, "bms-2/") {
		t.Fatalf("user 2 after reconnecting: %+v", u)
	}
	// The replaced connection's end does not take the user out.
	second.send(move(e164, 2, 2, 902, 0))
	n := decode[protocol.SetUserBreakoutRoomNotify](t, host.expect(protocol.BMSSetUserBreakoutRoomNotify, nil))
	if n.StatusCode != 0 || n.DestItem.UserCurrentRoomID != breakout.MainRoom {
		t.Fatalf("move on the new connection: %+v", n)
	}
}

// An instance dies with clients: once its beat is old, another instance
// takes its users out of the conference, as if they had left.
func TestUsersOfADeadInstanceLeave(t *testing.T) {
	e := start(t, setup{insts: 2, opts: breakout.Options{SweepInterval: 100 * time.Millisecond, InstanceTTL: 2 * time.Second}})
	a, b := e.insts[0], e.insts[1]
	e164 := e.conference()
	host := e.connect(b, e164, who{id: 1, host: true})
	e.connect(a, e164, who{id: 2, ums: 902})
	e.connect(a, e164, who{id: 3})
	host.send(startReq(e164, 1, []protocol.BreakoutRoomInfo{room(10, 0, item(2, 902), item(3, 0))}))
	host.expect(protocol.BMSBreakoutRoomsStartNotify, status(0))
	a.kill()
	testkit.Eventually(t, wait, testkit.Cond("the dead instance's users out", func() bool {
		st, _, err := b.svc.Snapshot(context.Background(), e164)
		if err != nil {
			t.Fatal(err)
		}
		u := st.Users["u902"]
		return u != nil && !u.Online() && u.Current == 0 && st.Users["i3"] == nil
	}))
	st, _ := e.waitPlan(b, e164)
	if u := st.Users["i1"]; u == nil || !u.Online() {
		t.Fatal("the live instance's user was taken out too")
	}
}
