package platform_test

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/platform"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// Two platforms, each with its own embedded NATS server and PMS: plat-b
// backs plat-a up, so plat-a is plat-b's master and plat-b is plat-a's
// backup. Each PMS reaches the other over a connection to the other's bus.
const (
	moidA = "plat-a"
	moidB = "plat-b"
)

var (
	specA = platform.PlatformSpec{Moid: moidA, Name: "Beijing", NumberSegment: "66", Store: "redis://10.1.0.1:6379/0", Bus: "nats://10.1.0.1:4222"}
	specB = platform.PlatformSpec{Moid: moidB, Name: "Shanghai", NumberSegment: "77", Store: "redis://10.2.0.1:6379/0", Bus: "nats://10.2.0.1:4222"}
)

// Polls are frequent enough for the tests to be quick; each waits up to a
// poll interval for its answer, and MissedPolls of them in a row (1.6 s)
// must go unanswered before a platform is unreachable, which a loaded
// machine running -race does not do to a platform that answers.
const (
	testPoll   = 200 * time.Millisecond
	testMisses = 8
)

// platNet is the two platforms, with a test connection on each bus that
// records the platform broadcasts heard there.
type platNet struct {
	t          testing.TB
	embA, embB *bus.Embedded
	busA, busB *bus.Bus // the test's connections
	optsA      platform.Options
	optsB      platform.Options
	a, b       *platform.Service

	mu    sync.Mutex
	heard map[string][]protocol.PlatformStateNtf // by the moid of the bus's platform
}

// newPlatNet starts both buses and both PMS; tune, when given, changes
// the options before they start (for instance to give B no way to A).
func newPlatNet(t testing.TB, tune func(a, b *platform.Options)) *platNet {
	t.Helper()
	return buildPlatNet(t, false, tune)
}

// buildPlatNet is newPlatNet; with listenA, A's bus listens on loopback
// and every connection to it goes over TCP, so that it can be stopped and
// started again (stopBusA, startBusA) and its clients reconnect.
func buildPlatNet(t testing.TB, listenA bool, tune func(a, b *platform.Options)) *platNet {
	t.Helper()
	n := &platNet{t: t, heard: make(map[string][]protocol.PlatformStateNtf)}
	n.embA, n.embB = testkit.BusServer(t, bus.EmbeddedOptions{NoListen: !listenA}), testkit.BusServer(t, bus.EmbeddedOptions{NoListen: true})
	n.busA, n.busB = n.connect(n.embA, "test-a"), n.connect(n.embB, "test-b")
	n.listen(n.busA, moidA)
	n.listen(n.busB, moidB)
	n.optsA = platform.Options{
		Platform: moidA, Rooms: twoRooms, Self: specA, Backups: []platform.PlatformSpec{specB},
		Peers:             map[string]*bus.Bus{moidB: n.connect(n.embB, "pms-a-to-b")},
		BroadcastInterval: time.Hour, ResyncInterval: time.Hour, PollInterval: testPoll, MissedPolls: testMisses,
	}
	n.optsB = platform.Options{
		Platform: moidB, Rooms: []platform.Room{{Moid: "room-b1", Name: "Pudong"}}, Self: specB,
		Masters:           []platform.PlatformSpec{specA},
		Peers:             map[string]*bus.Bus{moidA: n.connect(n.embA, "pms-b-to-a")},
		BroadcastInterval: time.Hour, ResyncInterval: time.Hour, PollInterval: testPoll, MissedPolls: testMisses,
	}
	if tune != nil {
		tune(&n.optsA, &n.optsB)
	}
	n.a = n.start(n.embA, n.optsA)
	n.b = n.start(n.embB, n.optsB)
	return n
}

func (n *platNet) connect(e *bus.Embedded, name string) *bus.Bus {
	n.t.Helper()
	opts := bus.Options{Embedded: e, Name: name}
	if e.URL() != "" {
		opts.OverTCP = true // a client of the listening bus, as another process is
	}
	b, err := bus.Connect(opts, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(b.Close)
	return b
}

func (n *platNet) listen(b *bus.Bus, moid string) {
	n.t.Helper()
	sub, err := b.Subscribe(protocol.SubjectPlatformNotify, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var ntf protocol.PlatformStateNtf
		if err := m.Decode(&ntf); err != nil {
			n.t.Errorf("platform broadcast on %s's bus: %v", moid, err)
			return
		}
		n.mu.Lock()
		n.heard[moid] = append(n.heard[moid], ntf)
		n.mu.Unlock()
	}))
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := b.Flush(context.Background()); err != nil {
		n.t.Fatal(err)
	}
}

// start starts a PMS on a connection of its own to e.
func (n *platNet) start(e *bus.Embedded, opts platform.Options) *platform.Service {
	n.t.Helper()
	svc, err := platform.New(opts, n.connect(e, "pms-"+opts.Platform), nil)
	if err != nil {
		n.t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	return svc
}

// restart stops the PMS of a platform and starts another with the same
// options.
func (n *platNet) restart(moid string) {
	n.t.Helper()
	svc, e, opts := &n.a, n.embA, n.optsA
	if moid == moidB {
		svc, e, opts = &n.b, n.embB, n.optsB
	}
	if err := (*svc).Shutdown(context.Background()); err != nil {
		n.t.Fatal(err)
	}
	*svc = n.start(e, opts)
}

// stopBusA shuts A's bus down (buildPlatNet with listenA) and returns its
// address; startBusA starts a bus on it again.
func (n *platNet) stopBusA() string {
	n.t.Helper()
	u := n.embA.URL()
	if u == "" {
		n.t.Fatal("A's bus does not listen")
	}
	n.embA.Shutdown()
	return u
}

func (n *platNet) startBusA(u string) {
	n.t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		n.t.Fatal(err)
	}
	port, err := strconv.Atoi(parsed.Port())
	if err != nil {
		n.t.Fatal(err)
	}
	n.embA = testkit.BusServer(n.t, bus.EmbeddedOptions{Host: parsed.Hostname(), Port: port})
}

// heardOn returns a copy of the broadcasts heard on a platform's bus.
func (n *platNet) heardOn(moid string) []protocol.PlatformStateNtf {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]protocol.PlatformStateNtf(nil), n.heard[moid]...)
}

// waitHeard waits for a broadcast on moid's bus, after the first `after`
// ones, for which cond holds, and returns its index.
func (n *platNet) waitHeard(moid string, after int, what string, cond func(protocol.PlatformStateNtf) bool) int {
	n.t.Helper()
	found := -1
	testkit.AwaitWithin(n.t, 15*time.Second, what, func() bool {
		for i, ntf := range n.heardOn(moid) {
			if i >= after && ntf.Type == protocol.PlatformStateNotify && ntf.Platform == moid && cond(ntf) {
				found = i
				return true
			}
		}
		return false
	})
	return found
}

// waitMaster waits until B's view of A satisfies cond.
func (n *platNet) waitMaster(what string, cond func(protocol.PlatformInfo) bool) protocol.PlatformInfo {
	n.t.Helper()
	var got protocol.PlatformInfo
	testkit.AwaitWithin(n.t, 15*time.Second, "B's view of A: "+what, func() bool {
		got = info(n.b.Platforms().Masters, moidA)
		return cond(got)
	})
	return got
}

// call sends req to moid's PMS over the test's connection to its bus.
func (n *platNet) call(moid string, req, ack any) error {
	n.t.Helper()
	b := n.busA
	if moid == moidB {
		b = n.busB
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return b.Call(ctx, protocol.SubjectPMS(moid), req, ack)
}

// setOwn sends PLATFORM_SET_REQ to moid's PMS, which must acknowledge it.
func (n *platNet) setOwn(moid, state, reason string) protocol.PlatformStateNtf {
	n.t.Helper()
	var ack protocol.PlatformStateNtf
	if err := n.call(moid, protocol.PlatformSetReq{Type: protocol.PlatformSetRq, State: state, Reason: reason}, &ack); err != nil {
		n.t.Fatalf("PLATFORM_SET_REQ %s on %s: %v", state, moid, err)
	}
	if ack.Type != protocol.PlatformSetAck || ack.Platform != moid || ack.State != state {
		n.t.Fatalf("PLATFORM_SET_REQ %s on %s answered %+v", state, moid, ack)
	}
	return ack
}

// setDR sends PLATFORM_DR_SET_REQ to B's PMS for A, which must
// acknowledge it.
func (n *platNet) setDR(mode string) protocol.PlatformStateNtf {
	n.t.Helper()
	var ack protocol.PlatformStateNtf
	if err := n.call(moidB, protocol.PlatformDRSetReq{Type: protocol.PlatformDRSetRq, Platform: moidA, Mode: mode}, &ack); err != nil {
		n.t.Fatalf("PLATFORM_DR_SET_REQ %s: %v", mode, err)
	}
	if ack.Type != protocol.PlatformDRSetAck || info(ack.Masters, moidA).DRMode != mode {
		n.t.Fatalf("PLATFORM_DR_SET_REQ %s answered %+v", mode, ack)
	}
	return ack
}

// info finds a platform in a list.
func info(list []protocol.PlatformInfo, moid string) protocol.PlatformInfo {
	for _, p := range list {
		if p.Platform == moid {
			return p
		}
	}
	return protocol.PlatformInfo{}
}

// wantNackOf checks that err is a NACK of type typ with code and a
// sentence holding want.
func wantNackOf(t testing.TB, err error, typ, code, want string) {
	t.Helper()
	var nack *bus.NackError
	if !errors.As(err, &nack) || nack.Type != typ || nack.Code != code || !strings.Contains(nack.Message, want) {
		t.Fatalf("got %v; want %s %s with %q", err, typ, code, want)
	}
}
