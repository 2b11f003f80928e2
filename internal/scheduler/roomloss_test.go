package scheduler_test

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/testkit"
)

// roomPlatform starts a platform on the embedded bus and store with lost
// nodes in room r1 hosting n conferences between them, then adds targets
// empty nodes in room r2, each with room for all n.
func roomPlatform(t *testing.T, n, lost, targets int) (*stack.Stack, []string) {
	t.Helper()
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = n
	}
	cfg := &config.Config{
		Platforms: []config.Platform{{Moid: "p1", NumberSegment: "51", E164Digits: 6, Rooms: []config.Room{
			{Moid: "r1", Type: "main"}, {Moid: "r2", Type: "secondary"},
		}}},
		Domains: []config.Domain{{Moid: "acme", Platform: "p1", License: limits}},
		API:     config.API{Tokens: []config.Token{{Name: "test", Token: bulkToken}}},
		Scheduler: config.Scheduler{
			NodeTimeout: 2 * time.Second, RMSTimeout: 3 * time.Second,
			LeaseTTL: 3 * time.Second, LeaseRenew: 200 * time.Millisecond,
			RestoreInterval: 200 * time.Millisecond, RestoreBackoff: 50 * time.Millisecond,
			StartGrace: time.Second, SweepInterval: time.Minute, EndCheckInterval: 10 * time.Second,
		},
		RMS: config.RMS{HeartbeatInterval: 100 * time.Millisecond, MissedHeartbeats: 10, ConfListInterval: 500 * time.Millisecond, DisconnectGrace: 200 * time.Millisecond},
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The stack puts sim-1, sim-3, ... in r1 and sim-2, sim-4, ... in r2.
	st, err := stack.Start(ctx, stack.Options{Config: cfg, Listen: "127.0.0.1:0", NATSListen: "none", SimNodes: 1, SimCapacity: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st.Stop(c)
	})
	for i := 1; i < lost; i++ {
		if err := st.AddSimNode(ctx, 2*i+1, n); err != nil {
			t.Fatal(err)
		}
	}
	waitUp(t, st, lost)
	client := apiclient.New("http://"+st.API.Addr(), bulkToken)
	var (
		next atomic.Int64
		mu   sync.Mutex
		nums []string
		wg   sync.WaitGroup
		fail atomic.Value
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				c, err := client.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: "room", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 600})
				if err != nil {
					fail.Store(err)
					return
				}
				mu.Lock()
				nums = append(nums, c.E164)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err, _ := fail.Load().(error); err != nil {
		t.Fatalf("loading the room's nodes: %v", err)
	}
	for i := 1; i <= targets; i++ {
		if err := st.AddSimNode(ctx, 2*i, n); err != nil {
			t.Fatal(err)
		}
	}
	waitUp(t, st, lost+targets)
	sort.Strings(nums)
	return st, nums
}

// roomNodes splits the stack's nodes by room.
func roomNodes(st *stack.Stack) map[string][]*medianode.Node {
	room := map[string]string{}
	for _, n := range st.RMS.Nodes() {
		room[n.Node] = n.Room
	}
	out := map[string][]*medianode.Node{}
	for _, n := range st.Nodes {
		out[room[n.ID()]] = append(out[room[n.ID()]], n)
	}
	return out
}

// A failed room's conferences are placed together: each node of the other
// room is asked to restore its share in full batches, not in one request
// per lost node (a few conferences each), and the old nodes let their
// copies go.
func TestFailedRoomIsRestoredInBatches(t *testing.T) {
	// Each target's share (n/targets) fits one batch of the scheduler's
	// (500); one lost node's share of it (n/lost/targets) is a tenth of
	// that.
	const n, lost, targets = 2000, 10, 4
	st, nums := roomPlatform(t, n, lost, targets)
	rooms := roomNodes(st)
	if len(rooms["r1"]) != lost || len(rooms["r2"]) != targets {
		t.Fatalf("%d nodes in r1 and %d in r2, want %d and %d", len(rooms["r1"]), len(rooms["r2"]), lost, targets)
	}
	for _, node := range rooms["r1"] {
		if len(node.Numbers()) == 0 {
			t.Fatalf("%s in r1 hosts nothing: the test proves nothing", node.ID())
		}
	}
	failed := time.Now()
	client := apiclient.New("http://"+st.API.Addr(), bulkToken)
	if _, err := client.FailRoom(context.Background(), "r1", "flooded"); err != nil {
		t.Fatal(err)
	}
	inR2 := map[string]bool{}
	for _, node := range rooms["r2"] {
		inR2[node.ID()] = true
	}
	testkit.Eventually(t, time.Minute, testkit.Cond("every conference running in r2", func() bool {
		where := placement(t, st)
		for _, node := range where {
			if !inR2[node] {
				return false
			}
		}
		return len(where) == n
	}))
	testkit.Eventually(t, time.Minute, testkit.Cond("the failed room's nodes let their copies go", func() bool {
		for _, node := range rooms["r1"] {
			if len(node.Numbers()) != 0 {
				return false
			}
		}
		return true
	}))
	testkit.Eventually(t, time.Minute, testkit.Cond("the platform settled", func() bool { return settled(t, st, nums) }))

	// The same conferences, each hosted by the r2 node the store names.
	where := sameSet(t, st, nums)
	per := map[string]int{}
	for _, node := range where {
		per[node]++
	}
	for _, node := range rooms["r2"] {
		if got := len(node.Numbers()); got != per[node.ID()] {
			t.Fatalf("%s hosts %d, the store puts %d there", node.ID(), got, per[node.ID()])
		}
	}
	// In batches that gather the whole room: the largest restore request
	// each target got carries more than one lost node's share of it (the
	// most a request could carry when the room was restored node by
	// node). How many requests it took is not asserted: under load a
	// restore that times out is retried in later, smaller ones.
	oneNodesShare := n / lost / targets
	for _, node := range rooms["r2"] {
		largest, current := 0, 0
		for _, r := range node.Received() {
			if r.At.Before(failed) {
				continue
			}
			switch {
			case r.Type == protocol.MAUMCURestoreConfsReq && r.E164 == "": // a request begins
				current = 0
			case r.Type == protocol.MAUMCURestoreConfReq && r.E164 != "": // a number it carries
				current++
				largest = max(largest, current)
			}
		}
		if largest <= oneNodesShare {
			t.Errorf("%s got restore requests of at most %d conferences for its %d; want one carrying more than one lost node's share (%d)", node.ID(), largest, per[node.ID()], oneNodesShare)
		}
	}
}
