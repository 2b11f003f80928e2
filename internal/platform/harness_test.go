package platform_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/platform"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

const platformMoid = "plat-a"

var twoRooms = []platform.Room{
	{Moid: "room-1", Name: "Main hall", Type: "main"},
	{Moid: "room-2", Name: "Annex", Type: "secondary"},
}

// harness is an embedded NATS server, a PMS on it, and a second connection
// with which the test plays RMS (its node list and notices) and listens to
// PMS's broadcasts.
type harness struct {
	t    testing.TB
	emb  *bus.Embedded
	bus  *bus.Bus
	opts platform.Options
	svc  *platform.Service

	mu         sync.Mutex
	broadcasts []protocol.ServerRoomStateNtf
	rmsNodes   []protocol.NodeInfo // what the stand-in RMS lists
	listReqs   int                 // RMS_NODELIST_REQs it answered
	rmsSub     *bus.Subscription
}

// quiet: no periodic broadcast or resync during a test unless it asks.
var quiet = platform.Options{BroadcastInterval: time.Hour, ResyncInterval: time.Hour}

// newHarness starts the bus, a stand-in RMS listing nodes (none when nodes
// is nil and rms is false) and a PMS with opts.
func newHarness(t testing.TB, opts platform.Options, rms bool, nodes ...protocol.NodeInfo) *harness {
	t.Helper()
	emb, err := bus.StartEmbedded(bus.EmbeddedOptions{NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	h := &harness{t: t, emb: emb, opts: opts, rmsNodes: nodes}
	if h.opts.Rooms == nil {
		h.opts.Rooms = twoRooms
	}
	h.bus = h.connect("test")
	sub, err := h.bus.Subscribe(protocol.SubjectServerRoomNotify, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var ntf protocol.ServerRoomStateNtf
		if err := m.Decode(&ntf); err != nil {
			t.Errorf("broadcast: %v", err)
			return
		}
		h.mu.Lock()
		h.broadcasts = append(h.broadcasts, ntf)
		h.mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if rms {
		h.startRMS()
	}
	h.flush()
	h.svc = h.startPMS(opts)
	return h
}

func (h *harness) connect(name string) *bus.Bus {
	h.t.Helper()
	b, err := bus.Connect(bus.Options{Embedded: h.emb, Name: name}, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(b.Close)
	return b
}

func (h *harness) flush() {
	h.t.Helper()
	if err := h.bus.Flush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

// startPMS starts a PMS on its own connection and, when the stand-in RMS
// answers, waits until PMS read its node list.
func (h *harness) startPMS(opts platform.Options) *platform.Service {
	h.t.Helper()
	if opts.Platform == "" {
		opts.Platform = platformMoid
	}
	if opts.Rooms == nil {
		opts.Rooms = twoRooms
	}
	svc, err := platform.New(opts, h.connect("pms"), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	if !svc.Ready() {
		h.t.Fatal("PMS is not ready after Start")
	}
	h.t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	if h.rmsSub != nil {
		// PMS reads the node list after Start returned.
		h.waitFor("PMS to read the stand-in RMS's node list", svc.Synced)
	}
	return svc
}

// startRMS makes the test answer RMS_NODELIST_REQ with rmsNodes.
func (h *harness) startRMS() {
	h.t.Helper()
	sub, err := h.bus.Subscribe(protocol.SubjectRMS(platformMoid), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		if m.Type != protocol.RMSNodeListReq {
			h.t.Errorf("stand-in RMS got %s", m.Type)
			return
		}
		h.mu.Lock()
		ack := protocol.NodeListAck{Type: protocol.RMSNodeListAck, Nodes: append([]protocol.NodeInfo(nil), h.rmsNodes...)}
		h.listReqs++
		h.mu.Unlock()
		_ = m.Respond(ack)
	}))
	if err != nil {
		h.t.Fatal(err)
	}
	h.rmsSub = sub
	h.t.Cleanup(func() { _ = sub.Unsubscribe() })
	h.flush()
}

// setRMSNodes changes what the stand-in RMS lists from now on.
func (h *harness) setRMSNodes(nodes ...protocol.NodeInfo) {
	h.mu.Lock()
	h.rmsNodes = nodes
	h.mu.Unlock()
}

func (h *harness) listRequests() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.listReqs
}

func mcu(id, room, state string) protocol.NodeInfo {
	return protocol.NodeInfo{Node: id, IP: "10.0.0.1", PID: "1", Room: room, Kind: "mcu", State: state, Capacity: 10}
}

func vrs(id, room, state string) protocol.NodeInfo {
	n := mcu(id, room, state)
	n.Kind = "vrs"
	return n
}

// notice publishes RMS_NODE_STATE_NTF on platform p's RMS subject.
func (h *harness) notice(p, node, room, state string) {
	h.t.Helper()
	ntf := protocol.NodeStateNtf{Type: protocol.RMSNodeStateNtf, Node: node, IP: "10.0.0.1", PID: "1", Room: room, State: state}
	if err := h.bus.Publish(protocol.SubjectRMSNotify(p), ntf); err != nil {
		h.t.Fatal(err)
	}
}

// set sends SERVER_ROOM_SET_REQ and returns the ACK or the NACK's error.
func (h *harness) set(room, state, reason string) (protocol.ServerRoomStateNtf, error) {
	h.t.Helper()
	var ack protocol.ServerRoomStateNtf
	err := h.bus.Call(context.Background(), protocol.SubjectPMS(platformMoid),
		protocol.ServerRoomSetReq{Type: protocol.ServerRoomSetRq, Room: room, State: state, Reason: reason}, &ack)
	return ack, err
}

// mustSet is set that must be acknowledged.
func (h *harness) mustSet(room, state, reason string) protocol.ServerRoomStateNtf {
	h.t.Helper()
	ack, err := h.set(room, state, reason)
	if err != nil {
		h.t.Fatalf("SERVER_ROOM_SET_REQ %s %s: %v", room, state, err)
	}
	if ack.Type != protocol.ServerRoomSetAck || ack.Platform != platformMoid || len(ack.Rooms) != len(h.opts.Rooms) {
		h.t.Fatalf("SERVER_ROOM_SET_REQ %s %s answered %+v", room, state, ack)
	}
	return ack
}

// wantNack checks that err is a SERVER_ROOM_SET_NACK with code and a
// sentence holding want.
func wantNack(t testing.TB, err error, code, want string) {
	t.Helper()
	var nack *bus.NackError
	if !errors.As(err, &nack) || nack.Type != protocol.ServerRoomSetNack || nack.Code != code || !strings.Contains(nack.Message, want) {
		t.Fatalf("got %v; want %s %s with %q", err, protocol.ServerRoomSetNack, code, want)
	}
}

// room finds a room in a list.
func room(rooms []protocol.RoomInfo, moid string) protocol.RoomInfo {
	for _, r := range rooms {
		if r.Room == moid {
			return r
		}
	}
	return protocol.RoomInfo{}
}

func (h *harness) room(moid string) protocol.RoomInfo { return room(h.svc.Rooms(), moid) }

// waitFor polls cond until it holds, within a bound for a loaded machine.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	testkit.AwaitWithin(h.t, 15*time.Second, what, cond)
}

// waitRoom waits until PMS has room moid in state with live MCU nodes.
func (h *harness) waitRoom(moid, state string, live int) {
	h.t.Helper()
	h.waitFor(fmt.Sprintf("%s %s with %d live nodes", moid, state, live), func() bool {
		r := h.room(moid)
		return r.State == state && r.LiveNodes == live
	})
}

// broadcastsSeen returns a copy of the broadcasts received so far.
func (h *harness) broadcastsSeen() []protocol.ServerRoomStateNtf {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]protocol.ServerRoomStateNtf(nil), h.broadcasts...)
}

// waitBroadcast waits for a broadcast after the first `after` ones in which
// cond holds for room moid, and returns the index of the first such one.
func (h *harness) waitBroadcast(after int, moid string, cond func(protocol.RoomInfo) bool) int {
	h.t.Helper()
	found := -1
	h.waitFor("a broadcast of "+moid, func() bool {
		for i, b := range h.broadcastsSeen() {
			if i < after || b.Platform != platformMoid || b.Type != protocol.ServerRoomStateNt {
				continue
			}
			if cond(room(b.Rooms, moid)) {
				found = i
				return true
			}
		}
		return false
	})
	return found
}

// barrier returns once PMS has handled every node notice published before
// it: notices are handled in order, so a marker node's notice seen means
// the earlier ones were too. The marker lives in room-2 and is left up.
func (h *harness) barrier(seq int) {
	h.t.Helper()
	id := fmt.Sprintf("marker-%d", seq)
	before := h.room("room-2").LiveNodes
	h.notice(platformMoid, id, "room-2", protocol.NodeUp)
	h.waitFor("the barrier notice", func() bool { return h.room("room-2").LiveNodes == before+1 })
}
