package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

func TestCreateRunsOnANodeAndEndReleasesEverything(t *testing.T) {
	e := start(t, setup{nodes: 2})
	ctx := context.Background()
	c := e.mustCreate("standup", func(r *apiclient.CreateConferenceRequest) {
		r.Public = true
		r.Invited = []string{"mt-1"}
	})
	if c.State != protocol.StateRunning || c.Node == "" || c.Room == "" || c.Platform != "p1" || c.RealPlatform != "p1" {
		t.Fatalf("created conference = %+v", c)
	}
	if len(c.E164) != 7 || c.E164[:2] != "51" {
		t.Fatalf("number %q is not in platform p1's segment 51", c.E164)
	}
	if got, err := e.client.Conference(ctx, c.E164); err != nil || got.Node != c.Node || got.State != protocol.StateRunning {
		t.Fatalf("GET = %+v, %v", got, err)
	}
	var host string
	for _, n := range e.st.Nodes {
		if n.Hosts(c.E164) {
			host = n.ID()
		}
	}
	if host != c.Node {
		t.Fatalf("node %q hosts it; the store says %q", host, c.Node)
	}
	if e.inUse("acme", "8_720p") != 1 {
		t.Fatal("licence not counted")
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the registry entry", func() bool {
		r, err := e.client.Registry(ctx, c.E164)
		return err == nil && r.Node == c.Node && r.Room == c.Room
	}))
	if !e.st.Scheduler.Controlled(c.E164) {
		t.Fatal("no control subscription for a running conference")
	}

	if err := e.client.EndConference(ctx, c.E164); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Conference(ctx, c.E164); apiCode(err) != protocol.ErrConfNotFound {
		t.Fatalf("GET after end: %v", err)
	}
	if keys := e.storeKeys(); len(keys) != 0 {
		t.Fatalf("store keys left after the end: %v", keys)
	}
	if e.inUse("acme", "8_720p") != 0 {
		t.Fatal("licence count not given back")
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the node to let go", func() bool { return e.hosted()[c.Node] == 0 }))
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the registry to forget it", func() bool {
		_, err := e.client.Registry(ctx, c.E164)
		return apiCode(err) == protocol.ErrNotFound
	}))
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the CM's release notice", func() bool { return len(e.events(c.E164, protocol.MAUReleaseConfNtf)) == 1 }))
	if err := e.client.EndConference(ctx, c.E164); apiCode(err) != protocol.ErrConfNotFound {
		t.Fatalf("second end: %v", err)
	}
}

func TestDelayTellsCMAndNode(t *testing.T) {
	e := start(t, setup{nodes: 1})
	ctx := context.Background()
	c := e.mustCreate("review")
	d, err := e.client.DelayConference(ctx, c.E164, 30)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.EndsAt.Add(30 * time.Minute); !d.EndsAt.Equal(want) || d.DurationMinutes != 90 {
		t.Fatalf("after delay ends_at %v (%d min), want %v (90 min)", d.EndsAt, d.DurationMinutes, want)
	}
	node := e.st.Nodes[0]
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the node's new end time", func() bool {
		h := node.Conferences()
		return len(h) == 1 && h[0].EndTime == d.EndsAt.UnixMilli() && h[0].DurationMinutes == 90
	}))
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the CM's duration notice", func() bool { return len(e.events(c.E164, protocol.MAUConfDurationNtf)) == 1 }))

	// The node asks for more time itself (MCU_MAU_DELAYCONF_REQ).
	ntf, err := node.RequestDelay(ctx, c.E164, 15)
	if err != nil {
		t.Fatal(err)
	}
	if ntf.EndTime != d.EndsAt.Add(15*time.Minute).UnixMilli() || ntf.DurationMinutes != 105 {
		t.Fatalf("node delay answered %+v", ntf)
	}
	got, _ := e.client.Conference(ctx, c.E164)
	if got.DurationMinutes != 105 {
		t.Fatalf("store duration after the node's delay = %d", got.DurationMinutes)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the CM told of the node's delay", func() bool { return len(e.events(c.E164, protocol.MAUConfDurationNtf)) == 2 }))

	for _, bad := range []int{0, -5} {
		if _, err := e.client.DelayConference(ctx, c.E164, bad); apiCode(err) != protocol.ErrBadRequest {
			t.Errorf("delay by %d: %v", bad, err)
		}
	}
	// Past the longest booking: refused by the one rule on a conference's
	// whole length, and nothing changes.
	if _, err := e.client.DelayConference(ctx, c.E164, 100000); apiCode(err) != protocol.ErrDurationLimit {
		t.Errorf("delay by 100000: %v", err)
	}
	if got, _ := e.client.Conference(ctx, c.E164); got.DurationMinutes != 105 {
		t.Errorf("a refused delay changed the length to %d", got.DurationMinutes)
	}
	if _, err := e.client.DelayConference(ctx, "5199999", 10); apiCode(err) != protocol.ErrConfNotFound {
		t.Errorf("delay of an unknown conference: %v", err)
	}
}

func TestRenameAndPassword(t *testing.T) {
	e := start(t, setup{nodes: 1})
	ctx := context.Background()
	c := e.mustCreate("old name")
	node := e.st.Nodes[0]

	name, pw := "board meeting", "s3cret"
	got, err := e.client.UpdateConference(ctx, c.E164, apiclient.UpdateConferenceRequest{Name: &name, Password: &pw})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != name || !got.HasPassword {
		t.Fatalf("after PATCH: %+v", got)
	}
	h := node.Conferences()
	if len(h) != 1 || h[0].Name != name || h[0].Password != pw {
		t.Fatalf("node holds %+v", h)
	}

	// A rename the node asks for goes to the CM for approval, back to the
	// node, and reaches the store from the node's state-change notice.
	if _, err := node.RequestRename(c.E164, "renamed on the node"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the approved rename in the store", func() bool {
		got, err := e.client.Conference(ctx, c.E164)
		return err == nil && got.Name == "renamed on the node"
	}))
	if h := node.Conferences(); h[0].Name != "renamed on the node" {
		t.Fatalf("node name = %q", h[0].Name)
	}

	empty := ""
	if _, err := e.client.UpdateConference(ctx, c.E164, apiclient.UpdateConferenceRequest{Name: &empty}); apiCode(err) != protocol.ErrBadRequest {
		t.Fatalf("empty name: %v", err)
	}
	node.SetFault(nodeFault(protocol.MAUMCUModifyConfNameReq))
	if _, err := e.client.UpdateConference(ctx, c.E164, apiclient.UpdateConferenceRequest{Name: &name}); apiCode(err) != protocol.ErrNodeRejected {
		t.Fatalf("rename refused by the node: %v", err)
	}
	if got, _ := e.client.Conference(ctx, c.E164); got.Name != "renamed on the node" {
		t.Fatalf("a refused rename changed the store: %q", got.Name)
	}
}

func TestMonitoringKeepAliveAndExpiry(t *testing.T) {
	e := start(t, setup{nodes: 1})
	ctx := context.Background()
	c := e.mustCreate("watched")
	node := e.st.Nodes[0]
	m, err := e.client.StartMonitor(ctx, c.E164, apiclient.MonitorRequest{IP: "10.9.8.7", Port: 9000})
	if err != nil {
		t.Fatal(err)
	}
	if h := node.Conferences(); len(h[0].Monitors) != 1 || h[0].Monitors[0] != "10.9.8.7:9000" {
		t.Fatalf("node monitors = %v", h[0].Monitors)
	}
	// Kept alive every 100 ms for longer than the TTL, and until the
	// expiry check ran twice after the TTL had passed, it stays: only a
	// pause of a whole TTL between two keep-alives may end it.
	sc := e.st.ActiveScheduler()
	ttl := e.st.Config.Scheduler.MonitorTTL
	started := time.Now()
	var passed bool
	var checks uint64 // expiry checks done once the TTL had passed
	for {
		if err := e.client.KeepMonitorAlive(ctx, c.E164, m.Addr); err != nil {
			t.Fatalf("keep-alive %s after the session started: %v", time.Since(started), err)
		}
		if !passed && time.Since(started) >= ttl {
			passed, checks = true, sc.Activity().MonitorChecks
		}
		if passed && sc.Activity().MonitorChecks >= checks+2 {
			break
		}
		if time.Since(started) > 10*ttl {
			t.Fatal("the scheduler's monitor expiry checks did not run")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ms, _ := e.client.Monitors(ctx, c.E164); len(ms) != 1 {
		t.Fatalf("a kept-alive session was dropped: %v", ms)
	}
	// Left alone, it expires: the node stops streaming and the CM is told.
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the session to expire", func() bool {
		ms, err := e.client.Monitors(ctx, c.E164)
		return err == nil && len(ms) == 0
	}))
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the node to stop streaming", func() bool { return len(node.Conferences()[0].Monitors) == 0 }))
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the CM's stop notice", func() bool { return len(e.events(c.E164, protocol.MAUMonitorStoppedNtf)) == 1 }))
	if err := e.client.KeepMonitorAlive(ctx, c.E164, m.Addr); apiCode(err) != protocol.ErrMonitorNotFound {
		t.Fatalf("keep-alive of an expired session: %v", err)
	}

	// Stopped by the CM.
	m2, err := e.client.StartMonitor(ctx, c.E164, apiclient.MonitorRequest{IP: "10.9.8.7", Port: 9001})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.StopMonitor(ctx, c.E164, m2.Addr); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the node to stop the second stream", func() bool { return len(node.Conferences()[0].Monitors) == 0 }))
	if _, err := e.client.StartMonitor(ctx, c.E164, apiclient.MonitorRequest{IP: "not-an-ip", Port: 1}); apiCode(err) != protocol.ErrBadRequest {
		t.Fatalf("bad ip: %v", err)
	}
}

func TestEndTimeNoticeAndEnd(t *testing.T) {
	e := start(t, setup{nodes: 1})
	ctx := context.Background()
	c := e.mustCreate("short")
	node := e.st.Nodes[0]
	// Bring the end time to within the notice window: 4 minutes left.
	e.setEndTime(c.E164, time.Now().Add(4*time.Minute))
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the node's about-to-end notice", func() bool { return node.Conferences()[0].WillEndNotified }))
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the CM's about-to-end notice", func() bool { return len(e.events(c.E164, protocol.MAUConfWillEndNtf)) == 1 }))
	// Three more end-time checks: the notice is sent once.
	sc := e.st.ActiveScheduler()
	checks := sc.Activity().EndChecks
	testkit.Eventually(t, testkit.Wait, testkit.Cond("three more end-time checks", func() bool { return sc.Activity().EndChecks >= checks+3 }))
	if n := len(e.events(c.E164, protocol.MAUConfWillEndNtf)); n != 1 {
		t.Fatalf("%d about-to-end notices, want 1", n)
	}
	// The end time comes.
	e.setEndTime(c.E164, time.Now())
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the end at end time", func() bool {
		_, err := e.client.Conference(ctx, c.E164)
		return apiCode(err) == protocol.ErrConfNotFound
	}))
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the node to let go", func() bool { return len(node.Conferences()) == 0 }))
	if keys := e.storeKeys(); len(keys) != 0 {
		t.Fatalf("store keys left: %v", keys)
	}
	if e.inUse("acme", "8_720p") != 0 {
		t.Fatal("licence not given back at end time")
	}
}

// setEndTime moves a conference's end time as if the clock had run.
func (e *env) setEndTime(e164 string, at time.Time) {
	e.t.Helper()
	setEndTimeIn(e.t, e.st.Store, e164, at)
}

// setEndTimeIn moves a conference's end time in a store.
func setEndTimeIn(t *testing.T, st *store.Store, e164 string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	rdb := st.Client()
	ms := at.UnixMilli()
	if err := rdb.HSet(ctx, "confex/"+e164+"/", "endtime", ms).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZAdd(ctx, "confs/endtime", redisZ(ms, e164)).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestLicenceAtItsLimit(t *testing.T) {
	e := start(t, setup{nodes: 2, limit: 3})
	for i := range 3 {
		e.mustCreate(fmt.Sprintf("conf %d", i))
	}
	before := e.storeKeys()
	_, err := e.create("one too many")
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != protocol.ErrLicenseExhausted {
		t.Fatalf("4th create: %v", err)
	}
	if want := `domain "acme" has 3 of 3 conferences of class 8_720p running`; !strings.Contains(ae.Message, want) {
		t.Fatalf("message %q does not say %q", ae.Message, want)
	}
	if after := e.storeKeys(); !slices.Equal(before, after) {
		t.Fatalf("a refused create wrote to the store:\nbefore %v\nafter  %v", before, after)
	}
	if e.inUse("acme", "8_720p") != 3 {
		t.Fatal("count moved")
	}
	total := 0
	for _, n := range e.hosted() {
		total += n
	}
	if total != 3 {
		t.Fatalf("nodes host %d conferences, want 3", total)
	}
	// Another class is counted on its own.
	e.mustCreate("hd", func(r *apiclient.CreateConferenceRequest) { r.Resolution = "1080p" })
	// Raising the limit at run time lets the next one in.
	if _, err := e.client.SetLicense(context.Background(), "acme", apiclient.SetLicenseRequest{Limits: map[string]int{"8_720p": 4}}); err != nil {
		t.Fatal(err)
	}
	e.mustCreate("now it fits")
}

func TestConcurrentCreatesNeverExceedLicence(t *testing.T) {
	const limit, tries = 60, 300
	e := start(t, setup{nodes: 3, limit: limit})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, full int
		others   []error
	)
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.create(fmt.Sprintf("rush %d", i))
			mu.Lock()
			defer mu.Unlock()
			switch apiCode(err) {
			case "":
				ok++
			case protocol.ErrLicenseExhausted:
				full++
			default:
				others = append(others, err)
			}
		}()
	}
	wg.Wait()
	if len(others) > 0 {
		t.Fatalf("unexpected errors: %v", others[0])
	}
	if ok != limit || full != tries-limit {
		t.Fatalf("%d created, %d refused; want %d and %d", ok, full, limit, tries-limit)
	}
	if n := e.inUse("acme", "8_720p"); n != limit {
		t.Fatalf("licence count %d, want %d", n, limit)
	}
	confs, err := e.client.DomainConferences(context.Background(), "acme", apiclient.ListOptions{})
	if err != nil || len(confs) != limit {
		t.Fatalf("store lists %d conferences (%v), want %d", len(confs), err, limit)
	}
	total := 0
	for _, n := range e.hosted() {
		total += n
	}
	if total != limit {
		t.Fatalf("nodes host %d, want %d", total, limit)
	}
}

func TestLeastLoadedPlacement(t *testing.T) {
	e := start(t, setup{nodes: 4})
	var wg sync.WaitGroup
	errs := make(chan error, 202)
	for i := range 202 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.create(fmt.Sprintf("spread %d", i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	loads, err := e.st.Store.NodeLoads(context.Background(), []string{"sim-1", "sim-2", "sim-3", "sim-4"})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := 1<<30, 0
	for _, n := range loads {
		lo, hi = min(lo, n), max(hi, n)
	}
	if hi-lo > 1 {
		t.Fatalf("loads %v differ by %d", loads, hi-lo)
	}
	hosted := e.hosted()
	for id, n := range loads {
		if hosted[id] != n {
			t.Fatalf("node %s hosts %d; the store says %d", id, hosted[id], n)
		}
	}
	// Ending ten on one node and creating five again fills that node first:
	// it stays the least loaded throughout.
	ctx := context.Background()
	confs, _ := e.client.DomainConferences(ctx, "acme", apiclient.ListOptions{})
	ended := 0
	for _, c := range confs {
		if c.Node == "sim-2" && ended < 10 {
			if err := e.client.EndConference(ctx, c.E164); err != nil {
				t.Fatal(err)
			}
			ended++
		}
	}
	for i := range 5 {
		if c := e.mustCreate(fmt.Sprintf("refill %d", i)); c.Node != "sim-2" {
			t.Fatalf("refill %d went to %s, not the least-loaded sim-2", i, c.Node)
		}
	}
}
