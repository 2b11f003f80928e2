package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

func TestNodeLostConferencesRestoredElsewhere(t *testing.T) {
	e := start(t, setup{nodes: 3})
	nums := e.createN(31)
	created := e.conferences()
	before := e.placement()
	victim := before[nums[0]]
	onVictim := 0
	for _, n := range e.placement() {
		if n == victim {
			onVictim++
		}
	}
	e.st.KillNode(e.nodeIndex(victim))
	e.settled("after the node was killed")
	e.sameConferences(created)
	after := e.placement()
	for num, node := range after {
		if node == victim {
			t.Fatalf("%s still on the dead node", num)
		}
		if before[num] != "" && before[num] != victim && node != before[num] {
			t.Fatalf("%s moved from live node %s to %s", num, before[num], node)
		}
	}
	// The notices travel the bus to the CM after the store has changed, so
	// the last ones may still be on their way.
	testkit.Eventually(t, testkit.Wait, testkit.Cond(fmt.Sprintf("the CM to hear pending and running notices for %d moved conferences", onVictim), func() bool {
		return e.eventsOf(protocol.MAUConfStateNtf, protocol.StatePendingRestore) >= onVictim &&
			e.eventsOf(protocol.MAUConfStateNtf, protocol.StateRunning) >= onVictim
	}))
	// The registry follows them.
	ctx := context.Background()
	for num, node := range after {
		testkit.Eventually(t, testkit.Wait, testkit.Cond("the registry to follow "+num, func() bool {
			r, err := e.client.Registry(ctx, num)
			return err == nil && r.Node == node
		}))
	}
}

// eventsOf counts the CM notices of a type with a given state.
func (e *env) eventsOf(typ, state string) int {
	e.t.Helper()
	evs := e.events("", typ)
	n := 0
	for _, ev := range evs {
		var p protocol.ConfStateNtf
		if err := jsonUnmarshal(ev.Payload, &p); err == nil && p.State == state {
			n++
		}
	}
	return n
}

func TestFrozenNodeDetectedAndItsCopiesEnded(t *testing.T) {
	e := start(t, setup{nodes: 2})
	nums := e.createN(10)
	created := e.conferences()
	frozen := e.placement()[nums[0]]
	i := e.nodeIndex(frozen)
	hostedBefore := len(e.st.Nodes[i].Conferences())
	e.st.FreezeNode(i)
	testkit.Eventually(t, testkit.Wait, testkit.Cond("its conferences restored", func() bool {
		for _, n := range e.placement() {
			if n == frozen {
				return false
			}
		}
		return true
	}))
	if got := len(e.st.Nodes[i].Conferences()); got != hostedBefore {
		t.Fatalf("the frozen node lost conferences while frozen: %d of %d", got, hostedBefore)
	}
	// It wakes up: its stale copies are ended (the store counts the others).
	e.st.Nodes[i].SetFault(medianode.Fault{})
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the woken node's stale copies ended", func() bool { return len(e.st.Nodes[i].Conferences()) == 0 }))
	e.settled("after the frozen node woke")
	e.sameConferences(created)
}

func TestShortHeartbeatGapMovesNothing(t *testing.T) {
	// Detection takes 8 missed beats of 200 ms; a gap of about one is a
	// blip. Counted between the beats that got through, the gap is up to
	// three beats (the one before it, the one skipped, the one after), so
	// five beats are left for a loaded machine's timer delays.
	e := start(t, setup{nodes: 2, tune: func(c *config.Config) {
		c.RMS.HeartbeatInterval, c.RMS.MissedHeartbeats = 200*time.Millisecond, 8
	}})
	e.createN(10)
	created, before := e.conferences(), e.placement()
	n := e.st.Nodes[0]
	downs := e.watchDowns()
	n.SetFault(medianode.Fault{NoHeartbeat: true})
	time.Sleep(250 * time.Millisecond) // the fault itself: about one beat left out
	n.SetFault(medianode.Fault{})
	// RMS has judged the node past the deadline its last beat before the
	// gap set: a move would have started.
	e.barrier(false)
	if got := downs(); len(got) != 0 {
		t.Fatalf("a short gap took nodes down: %v", got)
	}
	if after := e.placement(); !equalMaps(before, after) {
		t.Fatalf("a short gap moved conferences:\nbefore %v\nafter  %v", before, after)
	}
	if got := e.eventsOf(protocol.MAUConfStateNtf, protocol.StatePendingRestore); got != 0 {
		t.Fatalf("%d pending-restore notices after a blip", got)
	}
	e.settled("after the blip")
	e.sameConferences(created)
}

// watchDowns records the simulated nodes RMS takes down from now on; the
// barrier nodes are not counted.
func (e *env) watchDowns() func() []string {
	var (
		mu    sync.Mutex
		downs []string
	)
	e.st.RMS.OnNodeState(func(n protocol.NodeStateNtf) {
		if n.State != protocol.NodeDown || strings.HasPrefix(n.Node, "barrier-") {
			return
		}
		mu.Lock()
		downs = append(downs, n.Node+" ("+n.Reason+")")
		mu.Unlock()
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), downs...)
	}
}

func TestNoResourcesWaitsThenRestores(t *testing.T) {
	e := start(t, setup{nodes: 1})
	nums := e.createN(5)
	created := e.conferences()
	e.st.KillNode(0)
	testkit.Eventually(t, testkit.Wait, testkit.Cond("every conference pending-restore", func() bool {
		r, err := e.st.Audit(context.Background())
		return err == nil && r.Pending == 5
	}))
	r, _ := e.st.Audit(context.Background())
	if !r.OK() {
		t.Fatalf("pending conferences break an invariant: %s", r)
	}
	c, _ := e.client.Conference(context.Background(), nums[0])
	if c.State != protocol.StatePendingRestore || c.Reason == "" {
		t.Fatalf("pending conference shows %+v", c)
	}
	// Still refused meanwhile, with backoff: a new node takes them all.
	if err := e.st.AddSimNode(context.Background(), 9, 100); err != nil {
		t.Fatal(err)
	}
	e.settled("after a node came")
	e.sameConferences(created)
	for _, n := range e.placement() {
		if n != "sim-9" {
			t.Fatalf("restored on %s, want sim-9", n)
		}
	}
}

func TestRestoreRefusedByOneNodeGoesToAnother(t *testing.T) {
	e := start(t, setup{nodes: 3})
	e.createN(12)
	created, place := e.conferences(), e.placement()
	refuser := e.st.Nodes[1]
	refuser.SetFault(medianode.Fault{Nack: "NODE_BUSY", Only: []string{protocol.MAUMCURestoreConfReq}})
	victim := e.st.Nodes[0].ID()
	e.st.KillNode(0)
	e.settled("after the restores")
	e.sameConferences(created)
	for num, n := range e.placement() {
		if place[num] == victim && n != e.st.Nodes[2].ID() {
			t.Fatalf("%s restored on %s; the refusing node is %s", num, n, refuser.ID())
		}
	}
	nacked := 0
	for _, r := range refuser.Received() {
		if r.Type == protocol.MAUMCURestoreConfReq {
			nacked++
		}
	}
	if nacked == 0 {
		t.Fatal("the refusing node was never asked: the test proves nothing")
	}
}

func TestLegacyConferenceIsNeverMoved(t *testing.T) {
	e := start(t, setup{nodes: 2})
	nums := e.createN(6)
	created, place := e.conferences(), e.placement()
	victim := place[nums[0]]
	if err := e.st.Store.Update(context.Background(), nums[0], "legacy", "1"); err != nil {
		t.Fatal(err)
	}
	e.st.KillNode(e.nodeIndex(victim))
	e.settled("after the node with a legacy conference died")
	e.sameConferences(created)
	if got := e.placement()[nums[0]]; got != victim {
		t.Fatalf("legacy conference moved to %s", got)
	}
	c, _ := e.client.Conference(context.Background(), nums[0])
	if c.State != protocol.StateRunning {
		t.Fatalf("legacy conference is %s", c.State)
	}
}

func TestReconcileWithConferenceLists(t *testing.T) {
	e := start(t, setup{nodes: 2})
	nums := e.createN(4)
	created, place := e.conferences(), e.placement()
	a := e.st.Nodes[e.nodeIndex(place[nums[0]])]
	var b *medianode.Node
	for _, n := range e.st.Nodes {
		if n != a {
			b = n
		}
	}
	// 1. a node hosts a conference the store does not know: ended there.
	a.Inject("5199991", 0)
	// 2. a second copy of a running conference, older, on the other node:
	// ended there, the counted one stays.
	b.Inject(nums[0], 1)
	// 3. the node lost a conference without a word (same process): the
	// store clears it and gives its licence back.
	a.Forget(nums[0])
	gone := nums[0]
	for _, n := range []*medianode.Node{a, b} {
		if err := n.ReportConfList(); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the unknown conference ended", func() bool { return !a.Hosts("5199991") }))
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the duplicate copy ended", func() bool { return !b.Hosts(gone) }))
	e.settled("after reconciliation")
	// The one its node forgot is gone; every other one runs where it ran.
	delete(created, gone)
	e.sameConferences(created)
	for num, node := range e.placement() {
		if place[num] != node {
			t.Fatalf("%s moved from %s to %s in the reconciliation", num, place[num], node)
		}
	}
	if _, err := e.client.Conference(context.Background(), gone); apiCode(err) != protocol.ErrConfNotFound {
		t.Fatalf("a conference its node forgot is still in the store: %v", err)
	}
	if n := e.inUse("acme", "8_720p"); n != 3 {
		t.Fatalf("licence count %d, want 3", n)
	}
}

func TestPendingConferenceReportedByItsNodeRunsAgain(t *testing.T) {
	e := start(t, setup{nodes: 1})
	nums := e.createN(5)
	created := e.conferences()
	n := e.st.Nodes[0]
	// The node stops beating (RMS declares it down) but keeps its
	// conferences; with no other node nothing can be restored.
	n.SetFault(medianode.Fault{NoHeartbeat: true})
	testkit.Eventually(t, testkit.Wait, testkit.Cond("conferences pending-restore", func() bool {
		r, err := e.st.Audit(context.Background())
		return err == nil && r.Pending == 5
	}))
	n.SetFault(medianode.Fault{})
	if err := n.ReportConfList(); err != nil {
		t.Fatal(err)
	}
	e.settled("after the node came back with its conferences")
	e.sameConferences(created)
	for _, num := range nums {
		if got := e.placement()[num]; got != n.ID() {
			t.Fatalf("%s on %s, want it adopted back on %s", num, got, n.ID())
		}
	}
	for _, r := range n.Received() {
		if r.Type == protocol.MAUMCURestoreConfReq {
			t.Fatalf("a restore of %s was sent to the node that still had it", r.E164)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
