package resources_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/resources"
	"github.com/convene/convene/internal/testkit"
)

// watching liveness: heartbeats are too slow to take anyone down during a
// test, so a down notice comes from a lost connection, after a grace long
// enough for a reconnection on a loaded machine to land within it.
var watching = resources.Options{
	HeartbeatInterval: 10 * time.Second, MissedHeartbeats: 3, DisconnectGrace: time.Second,
}

// nodeConn is a media node's own bus connection, named as nodes name it;
// each call is a new connection, with a new client ID.
func (h *harness) nodeConn(id string) *bus.Bus {
	h.t.Helper()
	return h.connect(resources.NodeConnName(id))
}

// registerOn registers a node over its own connection.
func (h *harness) registerOn(b *bus.Bus, req protocol.RegisterReq) {
	h.t.Helper()
	if err := b.Call(context.Background(), protocol.SubjectRMSNodes(platform), req, nil); err != nil {
		h.t.Fatal(err)
	}
}

// connBarrier lets a throw-away node in room-2 (last in table order)
// register on its own connection and lose it. Its connection events and
// grace come after those of every connection that ended before, so once
// its down notice is seen, any down RMS would announce for those was
// announced too. Needs a watching harness.
func (h *harness) connBarrier() {
	h.t.Helper()
	id := fmt.Sprintf("zz-barrier-%d", time.Now().UnixNano())
	b := h.nodeConn(id)
	h.registerOn(b, reg(mcu(id, "room-2", 0, 1)))
	b.Close()
	if got := h.waitNotices(id, 2); got[1].Reason != resources.ReasonConnLost {
		h.t.Fatalf("barrier node went down with %q", got[1].Reason)
	}
}

// waitEnded waits until the server announced the end of a connection of
// each name (from ends). RMS hears the same announcements in the same
// order, so a connBarrier after it proves RMS judged those ends, their
// grace included.
func (h *harness) waitEnded(ends <-chan string, names ...string) {
	h.t.Helper()
	left := map[string]int{}
	for _, n := range names {
		left[n]++
	}
	timeout := time.After(5 * time.Second)
	for len(left) > 0 {
		select {
		case name := <-ends:
			if left[name]--; left[name] <= 0 {
				delete(left, name)
			}
		case <-timeout:
			h.t.Fatalf("the server did not announce the end of connections %v", left)
		}
	}
}

func TestLostConnectionTakesNodeDown(t *testing.T) {
	t.Parallel() // each has its own server
	h := newWatchingHarness(t, watching)
	hb := mcu("mcu-1", "room-1", 0, 10)
	nc := h.nodeConn("mcu-1")
	h.registerOn(nc, reg(hb))
	h.waitNotices("mcu-1", 1)

	closed := time.Now()
	nc.Close()
	down := h.waitNotices("mcu-1", 2)[1]
	if down.State != protocol.NodeDown || down.Reason != resources.ReasonConnLost {
		t.Fatalf("down notice = %+v, want down for %q", down, resources.ReasonConnLost)
	}
	after := h.arrivedAt("mcu-1", 1).Sub(closed)
	if after < watching.DisconnectGrace {
		t.Fatalf("down %s after the connection closed, within the %s grace", after, watching.DisconnectGrace)
	}
	t.Logf("down %s after the connection closed (heartbeat deadline %s)", after, 3*watching.HeartbeatInterval)
	if _, err := h.getRes(protocol.GetResReq{Domain: "d"}); nackCode(err) != protocol.ErrNoResources {
		t.Fatalf("GET_RES with the only node's connection lost: %v, want NO_RESOURCES", err)
	}
	h.connBarrier()
	if got := h.noticesFor("mcu-1"); len(got) != 2 {
		t.Fatalf("down announced more than once: %+v", transitions(got))
	}

	// Its first beat on a new connection brings it back.
	if err := h.nodeConn("mcu-1").Publish(protocol.SubjectRMSNodes(platform), hb); err != nil {
		t.Fatal(err)
	}
	got := transitions(h.waitNotices("mcu-1", 3))
	want := []transition{
		{"100", "up", "registered"}, {"100", "down", resources.ReasonConnLost}, {"100", "up", "heartbeat resumed"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("notices = %+v, want %+v", got, want)
	}
}

// ends reports the names of application connections that end, as the
// server announces them.
func (h *harness) ends() <-chan string {
	h.t.Helper()
	sys, err := bus.Connect(bus.Options{Embedded: h.emb, System: true, Name: "test-events"}, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(sys.Close)
	names := make(chan string, 64)
	if _, err := sys.Subscribe(bus.ConnEventsSubject(bus.AppAccount, "DISCONNECT"), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var ev bus.ConnEvent
		if err := m.Decode(&ev); err == nil {
			names <- ev.Client.Name
		}
	})); err != nil {
		h.t.Fatal(err)
	}
	if err := sys.Flush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	return names
}

func TestReconnectWithinGrace(t *testing.T) {
	cases := []struct {
		name string
		// The server announced the old connection's end before the new
		// one's start: the grace started and the reconnection ends it.
		// Otherwise the server usually notices the end later, and RMS
		// must know the end is of a replaced connection.
		endFirst bool
	}{{"end announced first", true}, {"at once", false}}
	t.Parallel()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newWatchingHarness(t, watching)
			ends := h.ends()
			nc := h.nodeConn("mcu-1")
			h.registerOn(nc, reg(mcu("mcu-1", "room-1", 0, 10)))
			h.waitNotices("mcu-1", 1)

			// The node's client reconnects under the same name, and does not
			// beat before the grace ends.
			nc.Close()
			if tc.endFirst {
				h.waitEnded(ends, resources.NodeConnName("mcu-1"))
			}
			h.nodeConn("mcu-1")
			if !tc.endFirst {
				h.waitEnded(ends, resources.NodeConnName("mcu-1"))
			}
			h.connBarrier()
			if got := h.noticesFor("mcu-1"); len(got) != 1 {
				t.Fatalf("a connection back within the grace: notices %+v", transitions(got))
			}
			if !h.nodeUp("mcu-1") {
				t.Fatal("node is not up")
			}
		})
	}
}

func TestDisconnectOfReplacedConnectionIsIgnored(t *testing.T) {
	t.Parallel() // each has its own server
	h := newWatchingHarness(t, watching)
	ends := h.ends()
	old := h.nodeConn("mcu-1")
	// The node's newer connection, while the server still holds the old.
	cur := h.nodeConn("mcu-1")
	h.registerOn(cur, reg(mcu("mcu-1", "room-1", 0, 10)))
	h.waitNotices("mcu-1", 1)

	old.Close()
	h.waitEnded(ends, resources.NodeConnName("mcu-1"))
	h.connBarrier()
	if got := h.noticesFor("mcu-1"); len(got) != 1 {
		t.Fatalf("the end of a replaced connection took the node down: %+v", transitions(got))
	}
	// The newer connection is the one that counts.
	cur.Close()
	if down := h.waitNotices("mcu-1", 2)[1]; down.Reason != resources.ReasonConnLost {
		t.Fatalf("down notice = %+v, want %q", down, resources.ReasonConnLost)
	}
}

func TestOtherConnectionsAreNotNodes(t *testing.T) {
	t.Parallel() // each has its own server
	h := newWatchingHarness(t, watching)
	ends := h.ends()
	h.registerOn(h.bus, reg(mcu("mcu-1", "room-1", 0, 10))) // over the shared "test" connection
	h.waitNotices("mcu-1", 1)
	// Connections named like no node, or like no known node, end.
	names := []string{"mcu-1", "mcu:", "mcu:mcu-2", "scheduler"}
	for _, name := range names {
		b, err := bus.Connect(bus.Options{Embedded: h.emb, Name: name}, nil)
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	h.waitEnded(ends, names...)
	h.connBarrier()
	if got := h.noticesFor("mcu-1"); len(got) != 1 || !h.nodeUp("mcu-1") {
		t.Fatalf("another connection's end took mcu-1 down: %+v", transitions(got))
	}
}

// A node is never taken down before its deadline. How soon after it the
// watcher finds it is a matter of its timer, checked on a made-up clock
// (TestWatch), not of a loaded machine's.
func TestNotDownBeforeTheDeadline(t *testing.T) {
	h := newHarness(t, fast)
	bt := h.keepBeating(mcu("mcu-1", "room-1", 0, 10))
	h.waitNotices("mcu-1", 1)
	testkit.Eventually(h.t, 15*time.Second, testkit.Cond("5 beats", func() bool { return bt.sent.Load() >= 5 }))
	bt.halt()
	last := time.Unix(0, bt.last.Load())

	down := h.waitNotices("mcu-1", 2)[1]
	if !strings.HasPrefix(down.Reason, "missed ") {
		t.Fatalf("down notice = %+v, want missed heartbeats", down)
	}
	deadline := fast.HeartbeatInterval * time.Duration(fast.MissedHeartbeats)
	after := h.arrivedAt("mcu-1", 1).Sub(last)
	t.Logf("down notice %s after the last beat (deadline %s)", after, deadline)
	if after < deadline {
		t.Fatalf("down notice %s after the last beat, before the %s deadline", after, deadline)
	}
}
