package medianode

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// Test intervals: short, so that the suite stays fast.
const (
	testBeat = 10 * time.Millisecond
	testList = 50 * time.Millisecond
)

// harness is one embedded NATS server with stand-ins for RMS and the
// scheduler around the nodes under test.
type harness struct {
	t        *testing.T
	emb      *bus.Embedded
	sched    *bus.Bus // plays the scheduler and the CM
	platform string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, emb: testkit.BusServer(t, bus.EmbeddedOptions{NoListen: true}), platform: "plat-a"}
	h.sched = h.conn("scheduler")
	return h
}

// conn opens a connection closed at the end of the test.
func (h *harness) conn(name string) *bus.Bus {
	h.t.Helper()
	return testkit.Connect(h.t, h.emb, name)
}

// node starts a node on its own connection with test defaults filled in;
// it is killed at the end of the test.
func (h *harness) node(opts Options) (*Node, *bus.Bus) {
	h.t.Helper()
	if opts.ID == "" {
		opts.ID = "sim-1"
	}
	if opts.Platform == "" {
		opts.Platform = h.platform
	}
	if opts.Room == "" {
		opts.Room = "room-a1"
	}
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = testBeat
	}
	if opts.ConfListInterval == 0 {
		opts.ConfListInterval = testList
	}
	b := h.conn(opts.ID)
	n, err := New(opts, b, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(n.Kill)
	return n, b
}

// call sends a request to a node as the scheduler does.
func (h *harness) call(node string, req, ack any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return h.sched.Call(ctx, protocol.SubjectToNode(node), req, ack)
}

// create asks a node to host a conference and fails the test unless it ACKs.
func (h *harness) create(node, e164 string) protocol.NodeConfAck {
	h.t.Helper()
	var ack protocol.NodeConfAck
	req := protocol.NodeConfReq{Type: protocol.MAUMCUCreateConfReq, Conf: protocol.Conference{E164: e164, Name: "conf " + e164}}
	if err := h.call(node, req, &ack); err != nil {
		h.t.Fatalf("create %s on %s: %v", e164, node, err)
	}
	return ack
}

// inbox collects every message on a subject. respond, when set, answers
// requests.
type inbox struct {
	mu      sync.Mutex
	msgs    []*bus.Msg
	respond func(m *bus.Msg)
}

func (h *harness) listen(subject string) *inbox {
	h.t.Helper()
	in := &inbox{}
	b := h.conn("listen " + subject)
	_, err := b.Subscribe(subject, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		in.mu.Lock()
		in.msgs = append(in.msgs, m)
		respond := in.respond
		in.mu.Unlock()
		if respond != nil {
			respond(m)
		}
	}))
	if err != nil {
		h.t.Fatal(err)
	}
	if err := b.Flush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	return in
}

func (in *inbox) setResponder(f func(m *bus.Msg)) {
	in.mu.Lock()
	in.respond = f
	in.mu.Unlock()
}

// of returns the messages of type typ received so far.
func (in *inbox) of(typ string) []*bus.Msg {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []*bus.Msg
	for _, m := range in.msgs {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// last decodes the latest message of type typ into v and reports whether
// there was one.
func (in *inbox) last(t *testing.T, typ string, v any) bool {
	t.Helper()
	msgs := in.of(typ)
	if len(msgs) == 0 {
		return false
	}
	if err := json.Unmarshal(msgs[len(msgs)-1].Data, v); err != nil {
		t.Fatal(err)
	}
	return true
}

// fakeRMS answers registrations (refusing the first nacks of them) and
// records heartbeats and unregistrations.
type fakeRMS struct {
	mu        sync.Mutex
	nacks     int
	ack       protocol.RegisterAck
	registers []protocol.RegisterReq
	beats     []protocol.HeartbeatNtf
	unregs    []protocol.HeartbeatNtf
	markers   int
}

const markerType = "TEST_MARKER_NTF"

func (h *harness) rms(nacks int, ack protocol.RegisterAck) *fakeRMS {
	h.t.Helper()
	r := &fakeRMS{nacks: nacks, ack: ack}
	r.ack.Type = protocol.RMSRegisterAck
	mux := bus.NewMux(nil)
	mux.HandleFunc(protocol.MCURegisterReq, func(_ context.Context, m *bus.Msg) {
		var req protocol.RegisterReq
		_ = m.Decode(&req)
		r.mu.Lock()
		r.registers = append(r.registers, req)
		refuse := r.nacks > 0
		if refuse {
			r.nacks--
		}
		ack := r.ack
		r.mu.Unlock()
		if refuse {
			_ = m.Nack(protocol.RMSRegisterNack, protocol.ErrUnknownRoom, "no room "+req.Room)
			return
		}
		_ = m.Respond(ack)
	})
	mux.HandleFunc(protocol.MCUHeartbeatNtf, func(_ context.Context, m *bus.Msg) {
		var ntf protocol.HeartbeatNtf
		_ = m.Decode(&ntf)
		r.mu.Lock()
		r.beats = append(r.beats, ntf)
		r.mu.Unlock()
	})
	mux.HandleFunc(protocol.MCUUnregisterNtf, func(_ context.Context, m *bus.Msg) {
		var ntf protocol.HeartbeatNtf
		_ = m.Decode(&ntf)
		r.mu.Lock()
		r.unregs = append(r.unregs, ntf)
		r.mu.Unlock()
	})
	mux.HandleFunc(markerType, func(context.Context, *bus.Msg) {
		r.mu.Lock()
		r.markers++
		r.mu.Unlock()
	})
	b := h.conn("rms")
	if _, err := b.Subscribe(protocol.SubjectRMSNodes(h.platform), mux); err != nil {
		h.t.Fatal(err)
	}
	if err := b.Flush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (r *fakeRMS) counts() (registers, beats, unregs, markers int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.registers), len(r.beats), len(r.unregs), r.markers
}

func (r *fakeRMS) beatCount() int {
	_, beats, _, _ := r.counts()
	return beats
}

// settle returns the number of heartbeats RMS has seen once everything
// the node's connection sent so far has arrived: it sends a marker on that
// connection behind them and waits for it.
func (h *harness) settle(r *fakeRMS, nodeBus *bus.Bus) int {
	h.t.Helper()
	_, _, _, before := r.counts()
	if err := nodeBus.Publish(protocol.SubjectRMSNodes(h.platform), protocol.Header{Type: markerType}); err != nil {
		h.t.Fatal(err)
	}
	testkit.Eventually(h.t, testkit.Wait, testkit.Cond("marker", func() bool { _, _, _, m := r.counts(); return m > before }))
	return r.beatCount()
}

// quiet waits d, long enough for many test intervals to pass, so that a
// test can check that something did not happen.
func quiet(d time.Duration) { time.Sleep(d) }

func e164(i int) string { return fmt.Sprintf("9%07d", i) }
