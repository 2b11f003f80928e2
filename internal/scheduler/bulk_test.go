package scheduler_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/audit"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/resources"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/testkit"
)

// These tests load one media node with thousands of conferences, add
// empty nodes, take the loaded one away, and judge the outcome by the
// exact conferences that must run: each by number, running, hosted by
// exactly the node the store names and by no other.

const bulkToken = "bulk-test-token-0123456789"

// bulkPlatform starts a platform on the embedded bus and store with one
// node hosting n conferences, then adds targets empty nodes of the given
// capacity.
func bulkPlatform(t *testing.T, n, targets, capacity int, tune func(*config.Config)) (*stack.Stack, []string) {
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
	if tune != nil {
		tune(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := stack.Start(ctx, stack.Options{Config: cfg, Listen: "127.0.0.1:0", NATSListen: "none", SimNodes: 1, SimCapacity: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st.Stop(c)
	})
	waitUp(t, st, 1)
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
				c, err := client.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: "bulk", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 600})
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
		t.Fatalf("loading the node: %v", err)
	}
	for i := range targets {
		if err := st.AddSimNode(ctx, i+2, capacity); err != nil {
			t.Fatal(err)
		}
	}
	waitUp(t, st, 1+targets)
	sort.Strings(nums)
	return st, nums
}

func waitUp(t *testing.T, st *stack.Stack, n int) {
	t.Helper()
	testkit.Eventually(t, time.Minute, testkit.Cond(fmt.Sprintf("%d nodes up", n), func() bool {
		up := 0
		for _, node := range st.RMS.Nodes() {
			if node.State == protocol.NodeUp {
				up++
			}
		}
		return up == n
	}))
}

// settled reports whether the store holds exactly nums, each running on a
// live node that hosts it, and no node hosts a copy the store does not
// count: the platform's audit holds.
func settled(t *testing.T, st *stack.Stack, nums []string) bool {
	t.Helper()
	ctx, cancel := readCtx()
	defer cancel()
	r, err := st.Audit(ctx)
	if err != nil {
		t.Logf("audit: %v", err) // a store busy with restores: look again
		return false
	}
	return r.OK() && r.Running == len(nums) && r.Conferences == len(nums) && r.Pending == 0 && r.Creating == 0
}

// readCtx bounds a test's read of the whole store: a store busy with a
// wave of restores under the race detector may take longer than one
// call's default timeout to answer it, and the read is only slow, not
// wrong.
func readCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// placement is where the store says each conference runs; it reads again
// while the store does not answer.
func placement(t *testing.T, st *stack.Stack) map[string]string {
	t.Helper()
	var confs []protocol.Conference
	testkit.Eventually(t, time.Minute, testkit.Cond("the store read", func() bool {
		ctx, cancel := readCtx()
		defer cancel()
		var err error
		if confs, err = st.Store.AllConferences(ctx); err != nil {
			t.Logf("reading the conferences: %v", err)
			return false
		}
		return true
	}))
	out := make(map[string]string, len(confs))
	for _, c := range confs {
		if c.State == protocol.StateRunning {
			out[c.E164] = c.Node
		}
	}
	return out
}

// sameSet fails unless the store's running conferences are exactly nums.
func sameSet(t *testing.T, st *stack.Stack, nums []string) map[string]string {
	t.Helper()
	where := placement(t, st)
	if len(where) != len(nums) {
		t.Fatalf("%d conferences run, want %d", len(where), len(nums))
	}
	for _, e := range nums {
		if where[e] == "" {
			t.Fatalf("%s does not run", e)
		}
	}
	return where
}

// received counts the messages of type typ a node received, the batches
// (logged once with no number) apart from the numbers they carried.
func received(n *medianode.Node, typ string, since time.Time) (batches, numbers int) {
	for _, r := range n.Received() {
		if r.Type != typ || r.At.Before(since) {
			continue
		}
		if r.E164 == "" {
			batches++
		} else {
			numbers++
		}
	}
	return batches, numbers
}

func TestLostNodeIsRestoredInBatches(t *testing.T) {
	const n, capacity = 2000, 1000
	st, nums := bulkPlatform(t, n, 3, capacity, nil)
	st.KillNode(0)
	testkit.Eventually(t, time.Minute, testkit.Cond("every conference running again", func() bool { return settled(t, st, nums) }))
	where := sameSet(t, st, nums)

	// Spread over the targets as creates are, none past its capacity.
	per := map[string]int{}
	for _, node := range where {
		per[node]++
	}
	low, high := n, 0
	for _, node := range st.Nodes[1:] {
		c := per[node.ID()]
		if len(node.Numbers()) != c {
			t.Fatalf("%s hosts %d, the store puts %d there", node.ID(), len(node.Numbers()), c)
		}
		low, high = min(low, c), max(high, c)
	}
	if high > capacity || high-low > n/10 {
		t.Fatalf("restored %v over nodes of capacity %d", per, capacity)
	}
	// In batches: a handful of requests, none per conference.
	batches, single := 0, 0
	for _, node := range st.Nodes[1:] {
		b, _ := received(node, protocol.MAUMCURestoreConfsReq, time.Time{})
		batches += b
		for _, r := range node.Received() {
			if r.Type == protocol.MAUMCURestoreConfReq && r.E164 != "" {
				single++
			}
		}
	}
	if batches == 0 || batches > n/100 || single < n {
		t.Fatalf("%d restore requests carried %d conferences; want at most %d requests carrying %d", batches, single, n/100, n)
	}
}

func TestReturningNodeEndsItsStaleCopiesInOneCommand(t *testing.T) {
	for _, tc := range []struct {
		name string
		// lists: the hung node still sends its conference lists (only
		// its heartbeats stopped).
		lists bool
	}{{"hung", false}, {"hung but reporting", true}} {
		t.Run(tc.name, func(t *testing.T) {
			returningNode(t, tc.lists)
		})
	}
}

func returningNode(t *testing.T, lists bool) {
	const n = 2000
	st, nums := bulkPlatform(t, n, 3, n, nil)
	ctx := context.Background()
	frozen := st.Nodes[0]
	// Two legacy conferences are never moved: the store keeps counting
	// them on the frozen node, and its return must not end them.
	legacy := []string{nums[10], nums[20]}
	for _, e := range legacy {
		if err := st.Store.Update(ctx, e, "legacy", "1"); err != nil {
			t.Fatal(err)
		}
	}
	// The restores are done when the CM has heard each runs again.
	var (
		mu      sync.Mutex
		running = map[string]bool{}
	)
	sub, err := st.Bus.Subscribe(protocol.SubjectCMNotifications, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var ntf protocol.ConfStateNtf
		if m.Type == protocol.MAUConfStateNtf && m.Decode(&ntf) == nil && ntf.State == protocol.StateRunning && ntf.Node != frozen.ID() {
			mu.Lock()
			running[ntf.E164] = true
			mu.Unlock()
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	var listLog []string
	lsub, err := st.Bus.Subscribe(protocol.SubjectFromNodes("p1"), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var ntf protocol.ConfListNtf
		if m.Type == protocol.MCUConfListNtf && m.Decode(&ntf) == nil && ntf.Node == frozen.ID() {
			mu.Lock()
			listLog = append(listLog, fmt.Sprintf("%s delta=%v since=%d v=%d n=%d+%d-%d", time.Now().Format("05.000"), ntf.Delta, ntf.Since, ntf.Version, ntf.Count, len(ntf.Confs), len(ntf.Removed)))
			mu.Unlock()
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lsub.Unsubscribe() }()
	if err := st.Bus.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st.FreezeNode(0)
	if !lists {
		f := frozen.Fault()
		f.NoConfList = true
		frozen.SetFault(f)
	}
	testkit.Eventually(t, time.Minute, testkit.Cond("the frozen node's conferences restored elsewhere", func() bool {
		where := placement(t, st)
		moved := 0
		for _, node := range where {
			if node != frozen.ID() {
				moved++
			}
		}
		return moved == n-len(legacy)
	}))
	testkit.Eventually(t, time.Minute, testkit.Cond("the CM told each restored conference runs", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(running) == n-len(legacy)
	}))
	testkit.Eventually(t, time.Minute, testkit.Cond("the frozen node told to let each old copy go", func() bool {
		_, told := received(frozen, protocol.MAUMCUReleaseConfCmd, time.Time{})
		return told >= n-len(legacy)
	}))
	if got := len(frozen.Numbers()); got != n {
		t.Fatalf("the frozen node hosts %d, want its %d copies", got, n)
	}
	thawed := time.Now()
	frozen.SetFault(medianode.Fault{})
	testkit.Eventually(t, time.Minute, testkit.Cond("the returning node's stale copies ended", func() bool { return len(frozen.Numbers()) == len(legacy) }))
	testkit.Eventually(t, time.Minute, testkit.Cond("the platform settled", func() bool { return settled(t, st, nums) }))
	where := sameSet(t, st, nums)
	for _, e := range legacy {
		if where[e] != frozen.ID() || !frozen.Hosts(e) {
			t.Fatalf("legacy %s runs on %s (hosted by the returning node: %v)", e, where[e], frozen.Hosts(e))
		}
	}
	batches, _ := received(frozen, protocol.MAUMCUReleaseConfsCmd, thawed)
	_, numbers := received(frozen, protocol.MAUMCUReleaseConfCmd, thawed)
	if batches != 1 || numbers != n-len(legacy) {
		var seq []string
		for _, r := range frozen.Received() {
			if r.At.After(thawed.Add(-time.Second)) && r.E164 == "" {
				seq = append(seq, fmt.Sprintf("%s@%v", r.Type, r.At.Sub(thawed)))
			}
		}
		t.Logf("sequence: %v", seq)
		mu.Lock()
		t.Logf("thawed at %s; lists: %v", thawed.Format("05.000"), listLog)
		mu.Unlock()
		t.Fatalf("after its return the node got %d release commands for %d conferences; want one for %d", batches, numbers, n-len(legacy))
	}
	// Its next lists change nothing.
	for range 2 {
		if err := frozen.ReportConfList(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	var r audit.Report
	testkit.Eventually(t, time.Minute, testkit.Cond("an audit after the later lists", func() bool {
		ctx, cancel := readCtx()
		defer cancel()
		var err error
		r, err = st.Audit(ctx)
		return err == nil
	}))
	if !r.OK() || r.Running != len(nums) || r.Conferences != len(nums) || r.Pending != 0 || r.Creating != 0 || len(frozen.Numbers()) != len(legacy) {
		t.Fatalf("the returning node's later lists changed the platform: %+v, the node hosts %d", r, len(frozen.Numbers()))
	}
}

func TestRestoreAnsweredLateDoublesNothing(t *testing.T) {
	const n = 1200
	st, nums := bulkPlatform(t, n, 2, n, func(c *config.Config) { c.Scheduler.NodeTimeout = 500 * time.Millisecond })
	late := st.Nodes[1]
	// Its answers come after the scheduler gave up: it hosts what it was
	// asked, the scheduler believes the restores failed.
	late.SetFault(medianode.Fault{AckDelay: 1500 * time.Millisecond, Only: []string{protocol.MAUMCURestoreConfReq}})
	st.KillNode(0)
	testkit.Eventually(t, time.Minute, testkit.Cond("a restore request to the late node", func() bool {
		b, _ := received(late, protocol.MAUMCURestoreConfsReq, time.Time{})
		return b > 0
	}))
	testkit.Eventually(t, time.Minute, testkit.Cond("the late node told to let its copies go", func() bool {
		b, _ := received(late, protocol.MAUMCUReleaseConfsCmd, time.Time{})
		return b > 0
	}))
	late.SetFault(medianode.Fault{})
	testkit.Eventually(t, time.Minute, testkit.Cond("every conference running once", func() bool { return settled(t, st, nums) }))
	where := sameSet(t, st, nums)
	for _, node := range st.Nodes[1:] {
		for _, e := range node.Numbers() {
			if where[e] != node.ID() {
				t.Fatalf("%s hosts %s, which runs on %s", node.ID(), e, where[e])
			}
		}
	}
}

// A node of an earlier release knows no batch messages: it gets its
// restores, and the ends of copies it must not host, one conference at a
// time, with the same outcome.
func TestOldNodeIsAskedOneConferenceAtATime(t *testing.T) {
	const n = 600
	st, nums := bulkPlatform(t, n, 0, 0, nil)
	ctx := context.Background()
	b, err := st.ConnectAs(bus.RoleMCU, resources.NodeConnName("old-1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	old, err := medianode.New(medianode.Options{
		ID: "old-1", IP: "127.0.2.1", Room: "r2", Platform: "p1", Capacity: n, OldProtocol: true,
		HeartbeatInterval: st.Config.RMS.HeartbeatInterval, ConfListInterval: st.Config.RMS.ConfListInterval,
	}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(old.Kill)
	waitUp(t, st, 2)
	st.KillNode(0)
	// The platform's audit knows only the stack's nodes: the old node is
	// judged here, by the store's placement and what it hosts.
	onOld := func() bool {
		where := placement(t, st)
		if len(where) != n || len(old.Numbers()) != n {
			return false
		}
		for _, e := range nums {
			if where[e] != "old-1" || !old.Hosts(e) {
				return false
			}
		}
		return true
	}
	testkit.Eventually(t, time.Minute, testkit.Cond("every conference running on the old node", onOld))
	if _, single := received(old, protocol.MAUMCURestoreConfReq, time.Time{}); single < n {
		t.Fatalf("the old node was asked %d restores, want one per conference (%d)", single, n)
	}
	// A copy it must not host ends too.
	old.Inject("519999", 0)
	if err := old.ReportConfList(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, time.Minute, testkit.Cond("the unknown copy ended on the old node", func() bool { return !old.Hosts("519999") }))
	if !onOld() {
		t.Fatal("the old node's conferences changed")
	}
	if b, _ := received(old, protocol.MAUMCUReleaseConfsCmd, time.Time{}); b != 0 {
		t.Fatalf("the old node was sent %d batch releases", b)
	}
}
