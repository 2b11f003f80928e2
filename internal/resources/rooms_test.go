package resources_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/resources"
	"github.com/convene/convene/internal/testkit"
)

func TestServerRoomStateNotify(t *testing.T) {
	h := newHarness(t, fast)
	h.keepBeating(mcu("m1", "room-1", 0, 10))
	h.keepBeating(mcu("m2", "room-2", 0, 10))
	testkit.Eventually(h.t, 15*time.Second, testkit.Cond("both nodes up", func() bool { return h.nodeUp("m1") && h.nodeUp("m2") }))

	// Another platform's notice is not ours, even for a room moid we know;
	// an unknown room in ours is skipped, the rest applied. The monitor
	// subject is handled in order, so once room-2 is abnormal the first
	// notice was handled too.
	for _, ntf := range []protocol.ServerRoomStateNtf{
		{Type: protocol.ServerRoomStateNt, Platform: "plat-b", Rooms: []protocol.RoomInfo{{Room: "room-1", State: protocol.RoomAbnormal}}},
		{Type: protocol.ServerRoomStateNt, Platform: platform, Rooms: []protocol.RoomInfo{
			{Room: "room-9", State: protocol.RoomAbnormal},
			{Room: "room-2", State: protocol.RoomAbnormal},
		}},
	} {
		if err := h.bus.Publish(protocol.SubjectServerRoomNotify, ntf); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(h.t, 15*time.Second, testkit.Cond("room-2 abnormal", func() bool { return h.svc.Rooms()[1].State == protocol.RoomAbnormal }))
	if got := h.svc.Rooms()[0].State; got != protocol.RoomNormal {
		t.Fatalf("room-1 is %s after another platform's notice", got)
	}
	ack, err := h.getRes(protocol.GetResReq{Domain: "tenant"})
	if err != nil || ack.Room != "room-1" || !slices.Equal(serverIDs(ack.MCU), []string{"m1"}) {
		t.Fatalf("GET_RES with room-2 abnormal: %+v, %v", ack, err)
	}

	// A failed room does not take its nodes down.
	h.barrier()
	if !h.nodeUp("m2") {
		t.Fatal("m2 went down with its room")
	}
	if got := transitions(h.noticesFor("m2")); len(got) != 1 {
		t.Fatalf("m2 notices = %+v, want only its registration", got)
	}

	h.setRooms(map[string]string{"room-2": protocol.RoomNormal})
	ack, err = h.getRes(protocol.GetResReq{Domain: "tenant"})
	if err != nil || !slices.Equal(serverIDs(ack.MCU), []string{"m1", "m2"}) {
		t.Fatalf("GET_RES after room-2 recovered: %+v, %v", ack, err)
	}
}

func TestSetRoomState(t *testing.T) {
	cases := []struct {
		name, room, state string
		want              error
	}{
		{"abnormal", "room-2", protocol.RoomAbnormal, nil},
		{"normal", "room-1", protocol.RoomNormal, nil},
		{"unknown room", "room-9", protocol.RoomAbnormal, resources.ErrUnknownRoom},
		{"unknown state", "room-1", "burning", resources.ErrBadRoomState},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, slow)
			err := h.svc.SetRoomState(tc.room, tc.state)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("SetRoomState(%q, %q) = %v, want %v", tc.room, tc.state, err, tc.want)
			}
			for _, r := range h.svc.Rooms() {
				want := protocol.RoomNormal
				if tc.want == nil && r.Room == tc.room {
					want = tc.state
				}
				if r.State != want {
					t.Errorf("room %s is %s, want %s", r.Room, r.State, want)
				}
			}
		})
	}
}

func TestRoomList(t *testing.T) {
	h := newHarness(t, fast)
	h.keepBeating(mcu("m1", "room-1", 10, 10)) // full, but live
	h.keepBeating(mcu("m2", "room-1", 0, 10))
	h.keepBeating(kind(mcu("v1", "room-2", 0, 10), "vrs"))
	if _, err := h.register(reg(mcu("m3", "room-2", 0, 10))); err != nil {
		t.Fatal(err)
	}
	h.waitNotices("m3", 2) // never beats: down
	testkit.Eventually(h.t, 15*time.Second, testkit.Cond("m1, m2, v1 up", func() bool { return h.nodeUp("m1") && h.nodeUp("m2") && h.nodeUp("v1") }))
	h.setRooms(map[string]string{"room-2": protocol.RoomAbnormal})

	var ack protocol.RoomListAck
	if err := h.bus.Call(context.Background(), protocol.SubjectRMS(platform),
		protocol.Header{Type: protocol.RMSRoomListReq}, &ack); err != nil {
		t.Fatal(err)
	}
	want := []protocol.RoomInfo{
		{Room: "room-1", Name: "Main hall", Platform: platform, RoomType: 0, State: protocol.RoomNormal, LiveNodes: 2},
		{Room: "room-2", Name: "Annex", Platform: platform, RoomType: 1, State: protocol.RoomAbnormal, LiveNodes: 0},
	}
	if ack.Type != protocol.RMSRoomListAck || !slices.Equal(ack.Rooms, want) {
		t.Fatalf("room list = %s %+v, want %+v", ack.Type, ack.Rooms, want)
	}
}
