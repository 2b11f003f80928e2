package resources_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/resources"
	"github.com/convene/convene/internal/testkit"
)

const platform = "plat-a"

var twoRooms = []resources.Room{
	{Moid: "room-1", Name: "Main hall", Type: "main"},
	{Moid: "room-2", Name: "Annex", Type: "secondary"},
}

// harness is an embedded NATS server, an RMS on it, and a second
// connection with which the test plays media nodes, the platform monitor
// and the scheduler.
type harness struct {
	t    testing.TB
	emb  *bus.Embedded
	bus  *bus.Bus
	opts resources.Options
	log  *slog.Logger // RMS's; nil discards
	svc  *resources.Service

	mu      sync.Mutex
	notices []protocol.NodeStateNtf // every RMS_NODE_STATE_NTF seen on the bus
	arrived []time.Time             // when each notice was seen
}

// fast liveness: down 800 ms after the last beat. A node that beats every
// third of an interval (keepBeating) goes down only if 24 of its beats in a
// row are late, which even a loaded machine does not do to a test; a test
// waits for a down, never for its absence.
var fast = resources.Options{HeartbeatInterval: 100 * time.Millisecond, MissedHeartbeats: 8}

// slow liveness: nobody goes down during a test.
var slow = resources.Options{HeartbeatInterval: time.Minute}

func newHarness(t testing.TB, opts resources.Options) *harness {
	t.Helper()
	return startHarness(t, opts, false)
}

// newWatchingHarness is newHarness with an RMS that hears connection
// events on a system connection.
func newWatchingHarness(t testing.TB, opts resources.Options) *harness {
	t.Helper()
	return startHarness(t, opts, true)
}

func startHarness(t testing.TB, opts resources.Options, events bool) *harness {
	t.Helper()
	return startLoggedHarness(t, opts, events, nil)
}

// startLoggedHarness is startHarness with an RMS that logs to log.
func startLoggedHarness(t testing.TB, opts resources.Options, events bool, log *slog.Logger) *harness {
	t.Helper()
	if opts.Platform == "" {
		opts.Platform = platform
	}
	if opts.Rooms == nil {
		opts.Rooms = twoRooms
	}
	emb := testkit.BusServer(t, bus.EmbeddedOptions{NoListen: true})
	h := &harness{t: t, emb: emb, opts: opts, log: log}
	if events {
		sys := testkit.Dial(t, bus.Options{Embedded: emb, System: true, Name: "rms-events"})
		h.opts.Events = sys
	}
	h.bus = h.connect("test")
	sub, err := h.bus.Subscribe(protocol.SubjectRMSNotify(platform), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var ntf protocol.NodeStateNtf
		if err := m.Decode(&ntf); err != nil {
			t.Errorf("notice: %v", err)
			return
		}
		h.mu.Lock()
		h.notices = append(h.notices, ntf)
		h.arrived = append(h.arrived, time.Now())
		h.mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := h.bus.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.svc = h.startRMS(nil)
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

// startRMS starts an RMS on its own connection; hook, when set, is
// registered before Start.
func (h *harness) startRMS(hook func(protocol.NodeStateNtf)) *resources.Service {
	h.t.Helper()
	svc, err := resources.New(h.opts, h.connect("rms"), h.log)
	if err != nil {
		h.t.Fatal(err)
	}
	if hook != nil {
		svc.OnNodeState(hook)
	}
	if err := svc.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	if !svc.Ready() {
		h.t.Fatal("RMS is not ready after Start")
	}
	h.t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	return svc
}

// noticesFor is the notices seen so far about one node, in order.
func (h *harness) noticesFor(node string) []protocol.NodeStateNtf {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []protocol.NodeStateNtf
	for _, n := range h.notices {
		if n.Node == node {
			out = append(out, n)
		}
	}
	return out
}

// arrivedAt is when the i-th notice about node was seen.
func (h *harness) arrivedAt(node string, i int) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	for j, n := range h.notices {
		if n.Node != node {
			continue
		}
		if i == 0 {
			return h.arrived[j]
		}
		i--
	}
	h.t.Fatalf("no notice %d about %s", i, node)
	return time.Time{}
}

// waitNotices waits until n notices about node were seen and returns all
// of them.
func (h *harness) waitNotices(node string, n int) []protocol.NodeStateNtf {
	h.t.Helper()
	testkit.Eventually(h.t, 15*time.Second, testkit.Cond(fmt.Sprintf("%d notices about %s", n, node), func() bool { return len(h.noticesFor(node)) >= n }))
	return h.noticesFor(node)
}

// transition is the part of a notice a test compares.
type transition struct{ pid, state, reason string }

func transitions(ntfs []protocol.NodeStateNtf) []transition {
	out := make([]transition, len(ntfs))
	for i, n := range ntfs {
		reason := n.Reason
		if strings.HasPrefix(reason, "missed ") {
			reason = "missed"
		}
		out[i] = transition{n.PID, n.State, reason}
	}
	return out
}

// barrier lets a throw-away node in room-1 register and expire. Notices
// are delivered in the order RMS found them, so once its down notice is
// seen, every transition RMS found before it was delivered too, and the
// watcher has run many times since. Needs fast liveness.
func (h *harness) barrier() {
	h.t.Helper()
	id := fmt.Sprintf("barrier-%d", time.Now().UnixNano())
	if _, err := h.register(reg(mcu(id, "room-1", 0, 1))); err != nil {
		h.t.Fatal(err)
	}
	h.waitNotices(id, 2)
}

func (h *harness) register(req protocol.RegisterReq) (protocol.RegisterAck, error) {
	var ack protocol.RegisterAck
	err := h.bus.Call(context.Background(), protocol.SubjectRMSNodes(platform), req, &ack)
	return ack, err
}

func (h *harness) beat(hb protocol.HeartbeatNtf) {
	h.t.Helper()
	if err := h.bus.Publish(protocol.SubjectRMSNodes(platform), hb); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) unregister(req protocol.RegisterReq) {
	h.t.Helper()
	req.Type = protocol.MCUUnregisterNtf
	if err := h.bus.Publish(protocol.SubjectRMSNodes(platform), req); err != nil {
		h.t.Fatal(err)
	}
}

// beater sends a node's heartbeats until stopped.
type beater struct {
	sent atomic.Int64
	last atomic.Int64 // when the last beat was about to be sent, Unix ns
	stop chan struct{}
	done chan struct{}
}

// keepBeating beats hb every third of the heartbeat interval.
func (h *harness) keepBeating(hb protocol.HeartbeatNtf) *beater {
	bt := &beater{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(bt.done)
		t := time.NewTicker(h.opts.HeartbeatInterval / 3)
		defer t.Stop()
		for {
			bt.last.Store(time.Now().UnixNano())
			if err := h.bus.Publish(protocol.SubjectRMSNodes(platform), hb); err != nil {
				return
			}
			bt.sent.Add(1)
			select {
			case <-bt.stop:
				return
			case <-t.C:
			}
		}
	}()
	h.t.Cleanup(bt.halt)
	return bt
}

// halt stops the beats; none is sent after it returns.
func (bt *beater) halt() {
	select {
	case <-bt.stop:
	default:
		close(bt.stop)
	}
	<-bt.done
}

func (h *harness) node(id string) (protocol.NodeInfo, bool) {
	for _, n := range h.svc.Nodes() {
		if n.Node == id {
			return n, true
		}
	}
	return protocol.NodeInfo{}, false
}

func (h *harness) nodeUp(id string) bool {
	n, ok := h.node(id)
	return ok && n.State == protocol.NodeUp
}

func (h *harness) getRes(req protocol.GetResReq) (protocol.GetResAck, error) {
	req.Type = protocol.RMSGetResReq
	var ack protocol.GetResAck
	err := h.bus.Call(context.Background(), protocol.SubjectRMS(platform), req, &ack)
	return ack, err
}

func (h *harness) setRooms(states map[string]string) {
	h.t.Helper()
	ntf := protocol.ServerRoomStateNtf{Type: protocol.ServerRoomStateNt, Platform: platform}
	for room, state := range states {
		ntf.Rooms = append(ntf.Rooms, protocol.RoomInfo{Room: room, Platform: platform, State: state})
	}
	if err := h.bus.Publish(protocol.SubjectServerRoomNotify, ntf); err != nil {
		h.t.Fatal(err)
	}
	testkit.Eventually(h.t, 15*time.Second, testkit.Cond("room states", func() bool {
		for _, r := range h.svc.Rooms() {
			if want, ok := states[r.Room]; ok && r.State != want {
				return false
			}
		}
		return true
	}))
}

// mcu is a heartbeat of an MCU node; pid 100, ip derived from the id.
func mcu(id, room string, confs, capacity int) protocol.HeartbeatNtf {
	return protocol.HeartbeatNtf{
		Type: protocol.MCUHeartbeatNtf, Node: id, IP: "ip-" + id, PID: "100", Room: room,
		Platform: platform, Confs: confs, Capacity: capacity,
	}
}

func kind(hb protocol.HeartbeatNtf, k string) protocol.HeartbeatNtf {
	hb.Kind = k
	return hb
}

func withPID(hb protocol.HeartbeatNtf, pid string) protocol.HeartbeatNtf {
	hb.PID = pid
	return hb
}

// reg is the registration a node with this heartbeat sends.
func reg(hb protocol.HeartbeatNtf) protocol.RegisterReq {
	return protocol.RegisterReq{
		Type: protocol.MCURegisterReq, Node: hb.Node, IP: hb.IP, PID: hb.PID, Room: hb.Room,
		Platform: hb.Platform, Capacity: hb.Capacity, Legacy: hb.Legacy, Kind: hb.Kind,
	}
}

// nackCode is the error code of a NACK, or "" for any other outcome.
func nackCode(err error) string {
	var nack *bus.NackError
	if errors.As(err, &nack) {
		return nack.Code
	}
	return ""
}
