package platform_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/platform"
	"github.com/convene/convene/internal/protocol"
)

func TestManualFailAndRecover(t *testing.T) {
	h := newHarness(t, quiet, true, mcu("m1", "room-1", protocol.NodeUp), mcu("m2", "room-2", protocol.NodeUp))
	// Start broadcast the initial state: every room normal.
	first := h.waitBroadcast(0, "room-1", func(r protocol.RoomInfo) bool { return r.State == protocol.RoomNormal })

	before := time.Now().UnixMilli()
	ack := h.mustSet("room-1", protocol.RoomAbnormal, "power maintenance")
	got := room(ack.Rooms, "room-1")
	if got.State != protocol.RoomAbnormal || !got.Manual || got.Reason != "power maintenance" || got.SinceMs < before ||
		got.LiveNodes != 1 || got.Name != "Main hall" || got.Platform != platformMoid {
		t.Fatalf("ACK of the failure shows room-1 as %+v", got)
	}
	if r2 := room(ack.Rooms, "room-2"); r2.State != protocol.RoomNormal || r2.RoomType != 1 {
		t.Fatalf("ACK of room-1's failure shows room-2 as %+v", r2)
	}
	failed := h.waitBroadcast(first+1, "room-1", func(r protocol.RoomInfo) bool {
		return r.State == protocol.RoomAbnormal && r.Manual && r.Reason == "power maintenance"
	})
	if b := h.broadcastsSeen()[failed]; room(b.Rooms, "room-2").State != protocol.RoomNormal || len(b.Rooms) != 2 {
		t.Fatalf("the failure's broadcast = %+v", b)
	}

	// Failing it again changes nothing and broadcasts nothing; the first
	// reason stays.
	ack = h.mustSet("room-1", protocol.RoomAbnormal, "second thoughts")
	if got := room(ack.Rooms, "room-1"); got.Reason != "power maintenance" {
		t.Fatalf("a repeated failure changed the room: %+v", got)
	}

	ack = h.mustSet("room-1", protocol.RoomNormal, "")
	if got := room(ack.Rooms, "room-1"); got.State != protocol.RoomNormal || got.Manual || got.Reason != "" {
		t.Fatalf("ACK of the recovery shows room-1 as %+v", got)
	}
	recovered := h.waitBroadcast(failed+1, "room-1", func(r protocol.RoomInfo) bool { return r.State == protocol.RoomNormal })
	if recovered != failed+1 {
		t.Fatalf("broadcasts between failure and recovery: %+v", h.broadcastsSeen()[failed+1:recovered])
	}

	// Recovering a normal room is acknowledged and broadcasts nothing
	// either: the next broadcast is the next failure's.
	h.mustSet("room-1", protocol.RoomNormal, "")
	h.mustSet("room-2", protocol.RoomAbnormal, "")
	next := h.waitBroadcast(recovered+1, "room-2", func(r protocol.RoomInfo) bool {
		return r.State == protocol.RoomAbnormal && r.Reason == platform.ReasonOperator
	})
	if next != recovered+1 {
		t.Fatalf("a no-op was broadcast: %+v", h.broadcastsSeen()[recovered+1:next])
	}
}

func TestRoomSetRefusals(t *testing.T) {
	h := newHarness(t, quiet, true, mcu("m1", "room-1", protocol.NodeUp))
	cases := []struct {
		name, room, state, reason string
		code, want                string
	}{
		{"unknown room", "room-9", protocol.RoomAbnormal, "", protocol.ErrUnknownRoom,
			`"room-9" is not a server room of platform "plat-a" (its rooms: room-1, room-2)`},
		{"no room", "", protocol.RoomAbnormal, "", protocol.ErrUnknownRoom, `"" is not a server room`},
		{"bad state", "room-1", "broken", "", protocol.ErrBadRequest, `state "broken" must be "normal" (recover) or "abnormal" (fail)`},
		{"no state", "room-1", "", "", protocol.ErrBadRequest, `state "" must be`},
		{"long reason", "room-1", protocol.RoomAbnormal, strings.Repeat("x", platform.MaxReasonLen+1), protocol.ErrBadRequest,
			"the reason is 257 bytes; keep it to 256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.set(c.room, c.state, c.reason)
			wantNack(t, err, c.code, c.want)
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		err := h.bus.Call(context.Background(), protocol.SubjectPMS(platformMoid),
			map[string]any{"type": protocol.ServerRoomSetRq, "roommoid": 7}, nil)
		wantNack(t, err, protocol.ErrBadRequest, "SERVER_ROOM_SET_REQ is not a valid message")
	})
	for _, r := range h.svc.Rooms() {
		if r.State != protocol.RoomNormal {
			t.Fatalf("a refused request changed %s: %+v", r.Room, r)
		}
	}
}

func TestRoomStateRequest(t *testing.T) {
	h := newHarness(t, quiet, true,
		mcu("m1", "room-1", protocol.NodeUp), mcu("m2", "room-1", protocol.NodeUp), mcu("m3", "room-2", protocol.NodeDown))
	var ntf protocol.ServerRoomStateNtf
	err := h.bus.Call(context.Background(), protocol.SubjectPMS(platformMoid),
		protocol.ServerRoomStateReq{Type: protocol.ServerRoomStateRq, Platform: platformMoid}, &ntf)
	if err != nil {
		t.Fatal(err)
	}
	want := []protocol.RoomInfo{
		{Room: "room-1", Name: "Main hall", Platform: platformMoid, RoomType: 0, State: protocol.RoomNormal, LiveNodes: 2},
		{Room: "room-2", Name: "Annex", Platform: platformMoid, RoomType: 1, State: protocol.RoomAbnormal,
			Reason: platform.ReasonNodesDown},
	}
	if ntf.Type != protocol.ServerRoomStateNt || ntf.Platform != platformMoid || len(ntf.Rooms) != 2 {
		t.Fatalf("SERVER_ROOM_STATE_REQ answered %+v", ntf)
	}
	for i, r := range ntf.Rooms {
		if r.SinceMs == 0 {
			t.Fatalf("room %s has no since", r.Room)
		}
		r.SinceMs = 0
		if r != want[i] {
			t.Fatalf("room %d = %+v, want %+v", i, r, want[i])
		}
	}
}

func TestPeriodicBroadcast(t *testing.T) {
	opts := quiet
	opts.BroadcastInterval = 10 * time.Millisecond
	h := newHarness(t, opts, true, mcu("m1", "room-1", protocol.NodeUp))
	h.mustSet("room-2", protocol.RoomAbnormal, "drill")
	// Without further changes, the same full state keeps coming.
	h.waitFor("three broadcasts after the last change", func() bool {
		n := 0
		for _, b := range h.broadcastsSeen() {
			if room(b.Rooms, "room-2").State == protocol.RoomAbnormal {
				n++
			}
		}
		return n >= 4
	})
	for _, b := range h.broadcastsSeen() {
		if b.Type != protocol.ServerRoomStateNt || b.Platform != platformMoid || len(b.Rooms) != 2 {
			t.Fatalf("broadcast %+v", b)
		}
	}
}

func TestSetRoomInProcess(t *testing.T) {
	h := newHarness(t, quiet, true, mcu("m1", "room-1", protocol.NodeUp))
	if err := h.svc.SetRoom("room-1", protocol.RoomAbnormal, "", true); err != nil {
		t.Fatal(err)
	}
	// An automatic recovery cannot undo an operator's failure.
	err := h.svc.SetRoom("room-1", protocol.RoomNormal, "", false)
	if !errors.Is(err, platform.ErrManualFailure) || !strings.Contains(err.Error(), "only an operator recovers it") {
		t.Fatalf("automatic recovery of a manual failure: %v", err)
	}
	if r := h.room("room-1"); r.State != protocol.RoomAbnormal || !r.Manual || r.Reason != platform.ReasonOperator {
		t.Fatalf("room-1 = %+v", r)
	}
	// An automatic failure, then an automatic recovery.
	if err := h.svc.SetRoom("room-2", protocol.RoomAbnormal, "", false); err != nil {
		t.Fatal(err)
	}
	if r := h.room("room-2"); r.State != protocol.RoomAbnormal || r.Manual || r.Reason != platform.ReasonNodesDown {
		t.Fatalf("room-2 = %+v", r)
	}
	if err := h.svc.SetRoom("room-2", protocol.RoomNormal, "", false); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		room, state string
		want        error
	}{
		{"room-9", protocol.RoomNormal, platform.ErrUnknownRoom},
		{"room-1", "up", platform.ErrBadRoomState},
	} {
		if err := h.svc.SetRoom(c.room, c.state, "", true); !errors.Is(err, c.want) {
			t.Errorf("SetRoom(%s, %s) = %v, want %v", c.room, c.state, err, c.want)
		}
	}
}
