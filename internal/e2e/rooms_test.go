package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/scheduler"
	"github.com/convene/convene/internal/testkit"
)

// roomOf maps nodes to rooms as the stack places them: sim-1, sim-3, ...
// in r1; sim-2, sim-4, ... in r2.
func (e *env) roomOf(node string) string {
	for _, n := range e.st.RMS.Nodes() {
		if n.Node == node {
			return n.Room
		}
	}
	return ""
}

func (e *env) roomState(room string) apiclient.Room {
	e.t.Helper()
	rooms, err := e.client.Rooms(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range rooms {
		if r.Moid == room {
			return r
		}
	}
	e.t.Fatalf("no room %s", room)
	return apiclient.Room{}
}

func TestRoomFailedByAnOperator(t *testing.T) {
	e := start(t, setup{nodes: 4})
	ctx := context.Background()
	e.createN(20)
	created := e.conferences()
	inR1 := 0
	for _, n := range e.placement() {
		if e.roomOf(n) == "r1" {
			inR1++
		}
	}
	if inR1 == 0 {
		t.Fatal("nothing runs in r1: the test proves nothing")
	}
	if _, err := e.client.FailRoom(ctx, "r1", "flooded"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("every conference out of r1", func() bool {
		for _, n := range e.placement() {
			if e.roomOf(n) == "r1" {
				return false
			}
		}
		return true
	}))
	e.settled("after r1 failed")
	e.sameConferences(created)
	for num, n := range e.placement() {
		if e.roomOf(n) != "r2" {
			t.Fatalf("%s still in %s after its room failed", num, e.roomOf(n))
		}
	}
	// The old nodes were told to let their copies go.
	for _, n := range e.st.Nodes {
		if e.roomOf(n.ID()) == "r1" && len(n.Conferences()) != 0 {
			t.Fatalf("node %s in the failed room still hosts %d conferences", n.ID(), len(n.Conferences()))
		}
	}
	if r := e.roomState("r1"); r.State != protocol.RoomAbnormal || r.Reason != "flooded" || !r.Manual {
		t.Fatalf("r1 shows %+v", r)
	}
	// New conferences avoid the failed room.
	for range 4 {
		c := e.mustCreate("while r1 is down")
		created.add(c)
		if e.roomOf(c.Node) != "r2" {
			t.Fatalf("created in %s while r1 is down", e.roomOf(c.Node))
		}
	}
	before := e.placement()
	if _, err := e.client.RecoverRoom(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("r1 normal again", func() bool { return e.roomState("r1").State == protocol.RoomNormal }))
	// The scheduler applied the recovery and then looked at what is
	// pending twice: recovery moves nothing back.
	sc := e.st.ActiveScheduler()
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the scheduler to take r1 as normal", func() bool { return len(sc.Activity().AbnormalRooms) == 0 }))
	e.restorePasses(sc, 2)
	if after := e.placement(); !equalMaps(before, after) {
		t.Fatal("recovering the room moved conferences")
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("RMS to offer r1 again", func() bool {
		for _, r := range e.st.RMS.Rooms() {
			if r.Room == "r1" {
				return r.State == protocol.RoomNormal
			}
		}
		return false
	}))
	c := e.mustCreate("after recovery")
	created.add(c)
	if e.roomOf(c.Node) != "r1" {
		t.Fatalf("after recovery the least-loaded nodes are in r1, but it went to %s", e.roomOf(c.Node))
	}
	e.settled("after r1 recovered")
	e.sameConferences(created)
}

// restorePasses waits until sc has run n more restore passes than now.
func (e *env) restorePasses(sc *scheduler.Scheduler, n uint64) {
	e.t.Helper()
	from := sc.Activity().RestorePasses
	testkit.Eventually(e.t, testkit.Wait, testkit.Cond(fmt.Sprintf("%d restore passes", n), func() bool { return sc.Activity().RestorePasses >= from+n }))
}

func TestRoomFailsWhenAllItsNodesDie(t *testing.T) {
	e := start(t, setup{nodes: 4})
	e.createN(16)
	created := e.conferences()
	for i, n := range e.st.Nodes {
		if e.roomOf(n.ID()) == "r1" {
			e.st.KillNode(i)
		}
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("r1 failed by itself", func() bool {
		r := e.roomState("r1")
		return r.State == protocol.RoomAbnormal && !r.Manual
	}))
	e.settled("after every node of r1 died")
	e.sameConferences(created)
	for num, n := range e.placement() {
		if e.roomOf(n) != "r2" {
			t.Fatalf("%s in %s", num, e.roomOf(n))
		}
	}
	// A node back in r1 recovers the room by itself.
	if err := e.st.AddSimNode(context.Background(), 5, 100); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("r1 recovered by itself", func() bool { return e.roomState("r1").State == protocol.RoomNormal }))
	e.settled("after r1 recovered")
	e.sameConferences(created)
}

func TestBusRestartMovesNothing(t *testing.T) {
	// Detection in the proportions of the defaults (500 ms x 3): clients
	// take up to about 200 ms to reconnect to a restarted bus.
	e := start(t, setup{nodes: 3, tcpBus: true, tune: func(c *config.Config) {
		c.RMS.HeartbeatInterval, c.RMS.MissedHeartbeats, c.RMS.DisconnectGrace = 200*time.Millisecond, 3, 500*time.Millisecond
	}})
	e.createN(15)
	created, before := e.conferences(), e.placement()
	restarted := time.Now()
	if err := e.st.RestartBus(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.Wait, func() error {
		c, err := e.create("after the bus restart")
		if err != nil {
			return fmt.Errorf("no create through the restarted bus: %w", err)
		}
		created.add(c)
		return nil
	})
	t.Logf("first create %v after the restart", time.Since(restarted))
	e.settled("after the bus restarted")
	e.sameConferences(created)
	t.Logf("settled %v after the restart", time.Since(restarted))
	after := e.placement()
	for num, n := range before {
		if after[num] != n {
			t.Fatalf("%s moved from %s to %s when the bus restarted", num, n, after[num])
		}
	}
}

func TestNodeConnectionBlipMovesNothing(t *testing.T) {
	// Detection in the proportions of the defaults (500 ms x 3, grace one
	// beat): a reconnect takes about 100 ms.
	e := start(t, setup{nodes: 2, tune: func(c *config.Config) {
		c.RMS.HeartbeatInterval, c.RMS.MissedHeartbeats, c.RMS.DisconnectGrace = 200*time.Millisecond, 3, 500*time.Millisecond
	}})
	e.createN(10)
	created, before := e.conferences(), e.placement()
	downs := e.watchDowns()
	if n := e.st.KickNode(0); n != 1 {
		t.Fatalf("kicked %d connections", n)
	}
	// RMS has judged the kicked connection's end past its grace, and the
	// node's heartbeats past their deadline: a move would have started.
	e.barrier(true)
	e.barrier(false)
	if got := downs(); len(got) != 0 {
		t.Fatalf("a connection blip took nodes down: %v", got)
	}
	if after := e.placement(); !equalMaps(before, after) {
		t.Fatal("a connection blip moved conferences")
	}
	for _, n := range e.st.RMS.Nodes() {
		if n.State != protocol.NodeUp && !strings.HasPrefix(n.Node, "barrier-") {
			t.Fatalf("node %s is %s after a blip", n.Node, n.State)
		}
	}
	e.settled("after the blip")
	e.sameConferences(created)
}
