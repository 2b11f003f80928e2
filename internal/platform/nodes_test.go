package platform_test

import (
	"context"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/platform"
	"github.com/convene/convene/internal/protocol"
)

func TestAutomaticFailureAndRecovery(t *testing.T) {
	h := newHarness(t, quiet, true,
		mcu("m1", "room-1", protocol.NodeUp), mcu("m2", "room-1", protocol.NodeUp),
		vrs("v1", "room-1", protocol.NodeUp), mcu("m3", "room-2", protocol.NodeUp))
	h.waitRoom("room-1", protocol.RoomNormal, 2)

	h.notice(platformMoid, "m1", "room-1", protocol.NodeDown)
	h.waitRoom("room-1", protocol.RoomNormal, 1)

	// The last MCU goes: the room fails, although its recorder is up.
	n := len(h.broadcastsSeen())
	h.notice(platformMoid, "m2", "room-1", protocol.NodeDown)
	h.waitRoom("room-1", protocol.RoomAbnormal, 0)
	r := h.room("room-1")
	if r.Manual || r.Reason != platform.ReasonNodesDown {
		t.Fatalf("room-1 after its last node went down: %+v", r)
	}
	failed := h.waitBroadcast(n, "room-1", func(r protocol.RoomInfo) bool {
		return r.State == protocol.RoomAbnormal && !r.Manual && r.Reason == platform.ReasonNodesDown
	})
	if h.room("room-2").State != protocol.RoomNormal {
		t.Fatal("room-2 failed with room-1")
	}

	// One node back is enough.
	h.notice(platformMoid, "m2", "room-1", protocol.NodeUp)
	h.waitRoom("room-1", protocol.RoomNormal, 1)
	if r := h.room("room-1"); r.Reason != "" || r.Manual {
		t.Fatalf("room-1 after recovery: %+v", r)
	}
	h.waitBroadcast(failed+1, "room-1", func(r protocol.RoomInfo) bool { return r.State == protocol.RoomNormal && r.LiveNodes == 1 })
}

func TestManualFailureIsNotRecoveredAutomatically(t *testing.T) {
	h := newHarness(t, quiet, true, mcu("m1", "room-1", protocol.NodeUp), mcu("m2", "room-2", protocol.NodeUp))

	t.Run("failed by hand while alive", func(t *testing.T) {
		h.mustSet("room-1", protocol.RoomAbnormal, "fire drill")
		h.notice(platformMoid, "m1", "room-1", protocol.NodeDown)
		h.waitRoom("room-1", protocol.RoomAbnormal, 0)
		h.notice(platformMoid, "m1", "room-1", protocol.NodeUp)
		h.waitFor("m1 back", func() bool { return h.room("room-1").LiveNodes == 1 })
		if r := h.room("room-1"); r.State != protocol.RoomAbnormal || !r.Manual || r.Reason != "fire drill" {
			t.Fatalf("room-1 after its node came back: %+v", r)
		}
		h.mustSet("room-1", protocol.RoomNormal, "")
		h.waitRoom("room-1", protocol.RoomNormal, 1)
	})

	t.Run("failed by hand after failing by itself", func(t *testing.T) {
		h.notice(platformMoid, "m2", "room-2", protocol.NodeDown)
		h.waitRoom("room-2", protocol.RoomAbnormal, 0)
		ack := h.mustSet("room-2", protocol.RoomAbnormal, "")
		if r := room(ack.Rooms, "room-2"); !r.Manual || r.Reason != platform.ReasonOperator {
			t.Fatalf("an operator's failure of a failed room: %+v", r)
		}
		h.notice(platformMoid, "m2", "room-2", protocol.NodeUp)
		h.waitFor("m2 back", func() bool { return h.room("room-2").LiveNodes == 1 })
		if r := h.room("room-2"); r.State != protocol.RoomAbnormal || !r.Manual {
			t.Fatalf("room-2 after its node came back: %+v", r)
		}
	})
}

func TestManualRecoveryOfAnAutomaticFailure(t *testing.T) {
	h := newHarness(t, quiet, true, mcu("m1", "room-1", protocol.NodeDown), mcu("m2", "room-1", protocol.NodeDown))
	h.waitRoom("room-1", protocol.RoomAbnormal, 0)

	// The operator knows better: the room is normal with every node down...
	h.mustSet("room-1", protocol.RoomNormal, "")
	h.barrier(1)
	if r := h.room("room-1"); r.State != protocol.RoomNormal {
		t.Fatalf("room-1 after the operator recovered it: %+v", r)
	}
	// ...until the next transition of one of its nodes says otherwise.
	h.notice(platformMoid, "m1", "room-1", protocol.NodeUp)
	h.waitRoom("room-1", protocol.RoomNormal, 1)
	h.notice(platformMoid, "m1", "room-1", protocol.NodeDown)
	h.waitRoom("room-1", protocol.RoomAbnormal, 0)
}

func TestDisabledAutomaticFailure(t *testing.T) {
	opts := quiet
	opts.DisableAutoRoomFailure = true
	h := newHarness(t, opts, true, mcu("m1", "room-1", protocol.NodeDown), mcu("m2", "room-2", protocol.NodeUp))
	h.notice(platformMoid, "m2", "room-2", protocol.NodeDown)
	h.waitFor("m2 down", func() bool { return h.room("room-2").LiveNodes == 0 })
	for _, r := range h.svc.Rooms() {
		if r.State != protocol.RoomNormal {
			t.Fatalf("with automatic failure off, %s failed: %+v", r.Room, r)
		}
	}
	h.mustSet("room-2", protocol.RoomAbnormal, "")
	h.waitRoom("room-2", protocol.RoomAbnormal, 0)
}

func TestOtherPlatformsNodesAreIgnored(t *testing.T) {
	h := newHarness(t, quiet, true, mcu("m1", "room-1", protocol.NodeUp), mcu("m3", "room-2", protocol.NodeUp))
	// Our room's node on another platform's subject, another platform's
	// room on ours: neither is ours.
	h.notice("plat-b", "m3", "room-2", protocol.NodeDown)
	h.notice(platformMoid, "b1", "room-b1", protocol.NodeDown)
	h.notice(platformMoid, "m1", "room-1", protocol.NodeDown) // handled after the second
	h.waitRoom("room-1", protocol.RoomAbnormal, 0)
	rooms := h.svc.Rooms()
	if len(rooms) != 2 {
		t.Fatalf("rooms = %+v", rooms)
	}
	if r := room(rooms, "room-2"); r.State != protocol.RoomNormal || r.LiveNodes != 1 {
		t.Fatalf("room-2 after another platform's notice: %+v", r)
	}
}

func TestStartWithoutRMS(t *testing.T) {
	// No RMS: Start still serves, and PMS learns nodes from notices, but
	// fails no room by itself before it saw RMS's list once.
	h := newHarness(t, quiet, false)
	h.notice(platformMoid, "m1", "room-1", protocol.NodeDown)
	h.barrier(1)
	if r := h.room("room-1"); r.State != protocol.RoomNormal {
		t.Fatalf("room-1 failed before PMS saw RMS's node list: %+v", r)
	}
	// RMS appears: PMS, still asking every second, reads its list and
	// applies the rule to every room.
	h.setRMSNodes(mcu("m1", "room-1", protocol.NodeDown))
	h.startRMS()
	h.waitRoom("room-1", protocol.RoomAbnormal, 0)
	if r := h.room("room-2"); r.State != protocol.RoomNormal || r.LiveNodes != 1 {
		t.Fatalf("room-2 = %+v", r)
	}
}

func TestResyncCorrectsMissedNotices(t *testing.T) {
	opts := quiet
	opts.ResyncInterval = 20 * time.Millisecond
	h := newHarness(t, opts, true, mcu("m1", "room-1", protocol.NodeUp), mcu("m2", "room-2", protocol.NodeUp),
		mcu("m3", "room-2", protocol.NodeUp))
	h.waitRoom("room-1", protocol.RoomNormal, 1)

	// m1 went down and its notice was lost: the next list says so.
	h.setRMSNodes(mcu("m1", "room-1", protocol.NodeDown), mcu("m2", "room-2", protocol.NodeUp), mcu("m3", "room-2", protocol.NodeUp))
	h.waitRoom("room-1", protocol.RoomAbnormal, 0)

	// RMS forgets m2 (it restarted and m2 has not beaten since): m2 stays
	// up until it has been left out for a resync interval, then is down.
	h.setRMSNodes(mcu("m1", "room-1", protocol.NodeDown), mcu("m3", "room-2", protocol.NodeUp))
	asked := h.listRequests() // every list answered from now on leaves m2 out
	h.waitFor("m2 taken as down", func() bool { return h.room("room-2").LiveNodes == 1 })
	if n := h.listRequests() - asked; n < 2 {
		t.Fatalf("m2 was taken down after %d lists that left it out; want at least 2", n)
	}
	if r := h.room("room-2"); r.State != protocol.RoomNormal {
		t.Fatalf("room-2 with m3 up: %+v", r)
	}
}

func TestUnknownNodeAsksForTheList(t *testing.T) {
	// A notice names a node PMS does not know: PMS reads RMS's list at once
	// to learn its kind; a recorder is not an MCU and keeps no room alive.
	h := newHarness(t, quiet, true, mcu("m1", "room-1", protocol.NodeUp))
	asked := h.listRequests()
	h.setRMSNodes(mcu("m1", "room-1", protocol.NodeUp), vrs("v1", "room-1", protocol.NodeUp))
	h.notice(platformMoid, "v1", "room-1", protocol.NodeUp)
	h.waitFor("the list asked for", func() bool { return h.listRequests() > asked })
	h.waitRoom("room-1", protocol.RoomNormal, 1)
	h.notice(platformMoid, "m1", "room-1", protocol.NodeDown)
	h.waitRoom("room-1", protocol.RoomAbnormal, 0)
}

func TestServesWhileRMSHoldsItsFirstList(t *testing.T) {
	// A fresh RMS holds its node list back for up to a heartbeat deadline.
	// Start does not wait for it, and PMS answers requests meanwhile (a
	// backup platform polling this one must not count it as down for that
	// long); it fails no room before the list, and applies it once it
	// comes.
	h := newHarness(t, quiet, false)
	release := make(chan struct{})
	sub, err := h.bus.Subscribe(protocol.SubjectRMS("plat-b"), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		<-release
		_ = m.Respond(protocol.NodeListAck{Type: protocol.RMSNodeListAck, Nodes: []protocol.NodeInfo{
			mcu("m1", "room-1", protocol.NodeUp), mcu("m2", "room-2", protocol.NodeDown)}})
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	h.flush()

	opts := quiet
	opts.Platform = "plat-b"
	opts.Rooms = twoRooms
	opts.NodeListTimeout = time.Hour // the held list does not time out here
	svc, err := platform.New(opts, h.connect("pms-b"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
		_ = svc.Shutdown(context.Background())
	})
	started := make(chan error, 1)
	go func() { started <- svc.Start(context.Background()) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Start waits for the node list RMS holds back")
	}
	if svc.Synced() {
		t.Fatal("PMS says it read a node list RMS has not sent")
	}
	var ntf protocol.PlatformStateNtf
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.bus.Call(ctx, protocol.SubjectPMS("plat-b"), protocol.PlatformStateReqMsg{Type: protocol.PlatformStateRq, Platform: "plat-b"}, &ntf); err != nil {
		t.Fatalf("PLATFORM_STATE_REQ while RMS holds its list: %v", err)
	}
	if ntf.Platform != "plat-b" || ntf.State != protocol.PlatformNormal {
		t.Fatalf("answer while RMS holds its list: %+v", ntf)
	}
	for _, r := range svc.Rooms() {
		if r.State != protocol.RoomNormal {
			t.Fatalf("a room failed before PMS read the node list: %+v", r)
		}
	}
	close(release)
	h.waitFor("PMS to read the held list", svc.Synced)
	h.waitFor("room-2, whose one node is down, to fail", func() bool { return room(svc.Rooms(), "room-2").State == protocol.RoomAbnormal })
	if r := room(svc.Rooms(), "room-1"); r.State != protocol.RoomNormal || r.LiveNodes != 1 {
		t.Fatalf("after the list, room-1 = %+v, want normal with its node live", r)
	}
}
