package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/testkit"
)

// allOnB waits until every conference of want that belongs to A runs on
// one of B's nodes, then checks that exactly want runs.
func (d *dr) allOnB(what string, want confSet) {
	d.t.Helper()
	ofA := d.domainsOf("pa")
	var last string
	onB := func() bool {
		for e, k := range want {
			if !ofA[k.domain] {
				continue
			}
			c, err := d.storeA.Conference(context.Background(), e)
			if err != nil || c.State != protocol.StateRunning || c.RealPlatform != "pb" || !strings.HasPrefix(c.Node, "b-") {
				last = fmt.Sprintf("%s is %q on %q of %q (%v)", e, c.State, c.Node, c.RealPlatform, err)
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(10 * time.Second)
	for !onB() {
		if time.Now().After(deadline) {
			d.sameConferences(want) // says which is lost, if one is
			d.t.Fatalf("timed out waiting for %s: %s", what, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.sameConferences(want)
}

func TestFailoverToTheBackupPlatform(t *testing.T) {
	d := startDR(t, 2)
	ctx := context.Background()
	var onA, onB []string
	for range 8 {
		onA = append(onA, d.create(d.clientA, "tenant-a", "of A").E164)
	}
	for range 3 {
		onB = append(onB, d.create(d.clientB, "tenant-b", "of B").E164)
	}
	tpl, err := d.clientA.CreateTemplate(ctx, apiclient.TemplateRequest{Name: "A's board", Domain: "tenant-a", Scale: 8, Resolution: "720p", DurationMinutes: 60})
	if err != nil {
		t.Fatal(err)
	}
	// A monitoring session on A: it stops when the conference moves to B.
	if _, err := d.clientA.StartMonitor(ctx, onA[0], apiclient.MonitorRequest{IP: "10.1.1.1", Port: 7000}); err != nil {
		t.Fatal(err)
	}
	d.settledAcross("before the failure", d.a, d.b)
	created := d.conferences()
	beforeB := map[string]string{}
	for _, e := range onB {
		c, _ := d.clientB.Conference(ctx, e)
		beforeB[e] = c.Node
	}

	d.a.Crash()
	d.waitPlatformState("pa", protocol.PlatformAbnormal)
	d.allOnB("A's conferences running on B", created)
	d.settledAcross("after the failover", d.b)
	d.sameConferences(created)

	// B's own conferences did not move.
	for e, n := range beforeB {
		if c, _ := d.clientB.Conference(ctx, e); c.Node != n {
			t.Fatalf("B's own %s moved from %s to %s", e, n, c.Node)
		}
	}
	// B's API and registry know them.
	for _, e := range onA {
		c, err := d.clientB.Conference(ctx, e)
		if err != nil || c.RealPlatform != "pb" || c.Platform != "pa" {
			t.Fatalf("B's API shows %s as %+v (%v)", e, c, err)
		}
		testkit.Eventually(t, testkit.Wait, testkit.Cond("B's registry to list "+e, func() bool {
			r, err := d.clientB.Registry(ctx, e)
			return err == nil && strings.HasPrefix(r.Node, "b-")
		}))
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("B's CM told the monitoring session stopped", func() bool {
		evs, _ := d.clientB.Events(ctx, apiclient.EventOptions{E164: onA[0]})
		for _, ev := range evs {
			if ev.Type == protocol.MAUMonitorStoppedNtf {
				return true
			}
		}
		return false
	}))
	if ms, err := d.clientB.Monitors(ctx, onA[0]); err != nil || len(ms) != 0 {
		t.Fatalf("monitors after failover: %v, %v", ms, err)
	}
	// Outside readers list each platform's conferences with where they run.
	listed, err := d.clientB.PlatformConferences(ctx, "pa", protocol.StateRunning)
	if err != nil || len(listed) != len(onA) {
		t.Fatalf("B lists %d of A's conferences (%v), want %d", len(listed), err, len(onA))
	}
	for _, c := range listed {
		if c.Platform != "pa" || c.RealPlatform != "pb" {
			t.Fatalf("listed %+v", c)
		}
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("A's template in B's registry", func() bool {
		_, err := d.clientB.Registry(ctx, tpl.E164)
		return err == nil
	}))
	// New bookings for A's tenant are taken by B, numbered in A's segment,
	// written to A's store.
	n := d.create(d.clientB, "tenant-a", "booked during the failover")
	if !strings.HasPrefix(n.E164, "51") || n.Platform != "pa" || n.RealPlatform != "pb" {
		t.Fatalf("booked during the failover: %+v", n)
	}
	if ok, _ := d.storeA.Exists(ctx, n.E164); !ok {
		t.Fatal("the booking is not in A's store")
	}
	created.add(n)
	d.settledAcross("after booking on B for A", d.b)
	d.sameConferences(created)
}

func TestFailbackKeepsMovedConferencesControlledFromTheMaster(t *testing.T) {
	d := startDR(t, 2)
	ctx := context.Background()
	var nums []string
	for range 5 {
		nums = append(nums, d.create(d.clientA, "tenant-a", "moves").E164)
	}
	created := d.conferences()
	d.a.Crash()
	d.waitPlatformState("pa", protocol.PlatformAbnormal)
	d.allOnB("A's conferences running on B", created)

	// A comes back: B hands the service back, the moved conferences stay.
	d.restartA()
	d.waitPlatformState("pa", protocol.PlatformNormal)
	d.applied(d.active(d.b), "A normal", func(m protocol.PlatformInfo) bool { return m.State == protocol.PlatformNormal })
	// A's scheduler is past its start-up grace and has looked at what is
	// pending twice, B's twice since it handed A back: nothing moved.
	d.restorePasses(d.active(d.a), 2)
	d.restorePasses(d.active(d.b), 2)
	d.settledAcross("after the failback", d.a, d.b)
	d.sameConferences(created)
	for _, e := range nums {
		c, err := d.clientA.Conference(ctx, e)
		if err != nil || c.RealPlatform != "pb" || !strings.HasPrefix(c.Node, "b-") {
			t.Fatalf("after failback %s is %+v (%v); want it still on B", e, c, err)
		}
	}
	// A's CM controls them: delay, rename, password, monitoring, end.
	e := nums[0]
	d2, err := d.clientA.DelayConference(ctx, e, 30)
	if err != nil || d2.DurationMinutes != 90 {
		t.Fatalf("a 30-minute delay of a 60-minute conference from A: %d min (%v); want 90", d2.DurationMinutes, err)
	}
	// The node hears of the new end by a notice that follows the answer.
	testkit.Eventually(t, testkit.Wait, testkit.Cond("B's node to hold the new end time", func() bool {
		for _, n := range d.b.Nodes {
			for _, h := range n.Conferences() {
				if h.E164 == e {
					return h.EndTime == d2.EndsAt.UnixMilli()
				}
			}
		}
		return false
	}))
	testkit.Eventually(t, testkit.Wait, testkit.Cond("A's CM told of the new length", func() bool {
		evs, _ := d.clientA.Events(ctx, apiclient.EventOptions{E164: e})
		for _, ev := range evs {
			if ev.Type == protocol.MAUConfDurationNtf {
				return true
			}
		}
		return false
	}))
	// Rename, password and monitoring reach the node on B that runs it,
	// and the answers come back to A's CM only once it applied them.
	node := d.nodeHosting(d.b, e)
	name, pw := "renamed from A", "pw"
	got, err := d.clientA.UpdateConference(ctx, e, apiclient.UpdateConferenceRequest{Name: &name, Password: &pw})
	if err != nil {
		t.Fatalf("rename from A: %v", err)
	}
	if got.Name != name || !got.HasPassword {
		t.Fatalf("A's API after the rename: %+v", got)
	}
	if h := hostedOn(node, e); h.Name != name || h.Password != pw {
		t.Fatalf("B's node %s holds name %q password %q; want %q, %q", node.ID(), h.Name, h.Password, name, pw)
	}
	if _, err := d.clientA.StartMonitor(ctx, e, apiclient.MonitorRequest{IP: "10.0.0.1", Port: 5000}); err != nil {
		t.Fatalf("monitor from A: %v", err)
	}
	if h := hostedOn(node, e); !slices.Equal(h.Monitors, []string{"10.0.0.1:5000"}) {
		t.Fatalf("B's node %s streams %s to %v; want 10.0.0.1:5000", node.ID(), e, h.Monitors)
	}
	for _, typ := range []string{protocol.MAUMCUModifyConfNameReq, protocol.MAUMCUModifyPasswordReq, protocol.MAUMCUStartMonitorReq} {
		if !nodeGot(node, typ, e) {
			t.Fatalf("B's node %s never received %s for %s", node.ID(), typ, e)
		}
	}
	if ms, err := d.clientA.Monitors(ctx, e); err != nil || len(ms) != 1 {
		t.Fatalf("A's API lists monitors %v (%v)", ms, err)
	}
	if err := d.clientA.EndConference(ctx, e); err != nil {
		t.Fatalf("end from A: %v", err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("B's node to let it go", func() bool { return !node.Hosts(e) }))
	if !nodeGot(node, protocol.MAUMCUReleaseConfCmd, e) {
		t.Fatalf("B's node %s let %s go without being told", node.ID(), e)
	}
	delete(created, e)
	d.settledAcross("after ending one from A", d.a, d.b)
	d.sameConferences(created)
}

// nodeHosting is the node of st that hosts e164.
func (d *dr) nodeHosting(st *stack.Stack, e164 string) *medianode.Node {
	d.t.Helper()
	for _, n := range st.Nodes {
		if n.Running() && n.Hosts(e164) {
			return n
		}
	}
	d.t.Fatalf("no node of %s hosts %s", st.Config.Platform, e164)
	return nil
}

// hostedOn is what node holds of a conference.
func hostedOn(n *medianode.Node, e164 string) medianode.Hosted {
	for _, h := range n.Conferences() {
		if h.E164 == e164 {
			return h
		}
	}
	return medianode.Hosted{}
}

// nodeGot reports whether node received a message of type typ for e164.
func nodeGot(n *medianode.Node, typ, e164 string) bool {
	for _, r := range n.Received() {
		if r.Type == typ && r.E164 == e164 {
			return true
		}
	}
	return false
}

func TestManualSwitchoverAndBack(t *testing.T) {
	d := startDR(t, 2)
	ctx := context.Background()
	for range 4 {
		d.create(d.clientA, "tenant-a", "switched")
	}
	created := d.conferences()
	if _, err := d.clientA.FailPlatform(ctx, "pa", "datacenter maintenance"); err != nil {
		t.Fatal(err)
	}
	d.waitPlatformState("pa", protocol.PlatformAbnormal)
	// A's nodes let their copies go; A books nothing meanwhile.
	testkit.Eventually(t, testkit.Wait, testkit.Cond("A's nodes empty", func() bool {
		for _, n := range d.a.Nodes {
			if len(n.Conferences()) > 0 {
				return false
			}
		}
		return true
	}))
	if _, err := d.clientA.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: "x", Domain: "tenant-a", Scale: 8, Resolution: "720p", DurationMinutes: 5}); apiCode(err) != protocol.ErrPlatformNotServed {
		t.Fatalf("booking on a switched-over platform: %v", err)
	}
	d.allOnB("A's conferences running on B", created)
	d.settledAcross("during the switchover", d.a, d.b)
	if _, err := d.clientA.RecoverPlatform(ctx, "pa"); err != nil {
		t.Fatal(err)
	}
	d.waitPlatformState("pa", protocol.PlatformNormal)
	testkit.Eventually(t, testkit.Wait, testkit.Cond("A books again", func() bool {
		c, err := d.clientA.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: "back", Domain: "tenant-a", Scale: 8, Resolution: "720p", DurationMinutes: 5})
		if err == nil {
			created.add(c)
		}
		return err == nil
	}))
	d.settledAcross("after switching back", d.a, d.b)
	d.sameConferences(created)
}

// A's CM controls its conferences that run on B, while A is switched over
// and after it switched back: each request is applied once, by the
// scheduler running the conference, and answered as it was applied.
func TestControlOfMovedConferencesIsAppliedOnce(t *testing.T) {
	d := startDR(t, 2)
	ctx := context.Background()
	var nums []string
	for range 4 {
		nums = append(nums, d.create(d.clientA, "tenant-a", "controlled from A").E164)
	}
	created := d.conferences()
	if _, err := d.clientA.FailPlatform(ctx, "pa", "datacenter maintenance"); err != nil {
		t.Fatal(err)
	}
	d.waitPlatformState("pa", protocol.PlatformAbnormal)
	testkit.Eventually(t, testkit.Wait, testkit.Cond("A's nodes empty", func() bool { return len(liveHosted(d.a)) == 0 }))
	d.allOnB("A's conferences running on B", created)

	// control delays one by 30 minutes and ends another, from A's API.
	control := func(when, delayed, ended string) {
		t.Helper()
		before, err := d.storeA.Conference(ctx, delayed)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.clientA.DelayConference(ctx, delayed, 30)
		after, _ := d.storeA.Conference(ctx, delayed)
		if err != nil || got.DurationMinutes != before.DurationMinutes+30 || after.DurationMinutes != before.DurationMinutes+30 {
			t.Fatalf("%s, a 30-minute delay of %s from A: answered %d min (%v); the store went from %d to %d min",
				when, delayed, got.DurationMinutes, err, before.DurationMinutes, after.DurationMinutes)
		}
		if err := d.clientA.EndConference(ctx, ended); err != nil {
			t.Fatalf("%s, ending %s from A: %v", when, ended, err)
		}
		d.ended(when+", "+ended+" ended", ended)
		delete(created, ended)
	}
	control("during the switchover", nums[0], nums[1])
	d.settledAcross("during the switchover", d.a, d.b)
	d.sameConferences(created)

	if _, err := d.clientA.RecoverPlatform(ctx, "pa"); err != nil {
		t.Fatal(err)
	}
	d.waitPlatformState("pa", protocol.PlatformNormal)
	d.applied(d.active(d.b), "A normal", func(m protocol.PlatformInfo) bool { return m.State == protocol.PlatformNormal })
	control("after switching back", nums[2], nums[3])
	d.settledAcross("after switching back", d.a, d.b)
	d.sameConferences(created)
}

func TestClosedDRNeverTakesOver(t *testing.T) {
	d := startDR(t, 1)
	ctx := context.Background()
	e := d.create(d.clientA, "tenant-a", "stays").E164
	created := d.conferences()
	if _, err := d.clientB.SetDRMode(ctx, "pa", protocol.DRClosed); err != nil {
		t.Fatal(err)
	}
	d.a.Crash()
	// B's scheduler applied a platform state in which A is unreachable,
	// and then looked at what is pending twice: closed means it is not
	// told A failed, and takes nothing over.
	sc := d.active(d.b)
	d.applied(sc, "A unreachable with DR closed", func(m protocol.PlatformInfo) bool {
		return m.Observed == protocol.PlatformUnreachable && m.DRMode == protocol.DRClosed
	})
	d.restorePasses(sc, 2)
	c, err := d.storeA.Conference(ctx, e)
	if err != nil || c.RealPlatform != "pa" || c.State != protocol.StateRunning {
		t.Fatalf("with DR closed, %s became %+v (%v)", e, c, err)
	}
	for _, n := range d.b.Nodes {
		if n.Hosts(e) {
			t.Fatal("B took a conference over with DR closed")
		}
	}
	// An operator turns DR on by hand: B takes over.
	if _, err := d.clientB.SetDRMode(ctx, "pa", protocol.DRManualOn); err != nil {
		t.Fatal(err)
	}
	d.allOnB("the conference running on B after manual-on", created)
}

// ended waits until a conference is gone from A's store and from every
// node.
func (d *dr) ended(what, e164 string) {
	d.t.Helper()
	testkit.Eventually(d.t, testkit.Wait, testkit.Cond(what, func() bool {
		if ok, err := d.storeA.Exists(context.Background(), e164); err != nil || ok {
			return false
		}
		hosted := liveHosted(d.a, d.b)
		for _, l := range hosted {
			if slices.Contains(l, e164) {
				return false
			}
		}
		return true
	}))
}

// Expiry is the job of the platform a conference really runs on
// (realplatformmoid), whichever store holds it: B never ends one of A's
// running on A, A never ends one of its own running on B, and B ends
// those it runs, during the failover and after the failback.
func TestExpiryBelongsToThePlatformRunningTheConference(t *testing.T) {
	d := startDR(t, 2)
	ctx := context.Background()
	onA := d.create(d.clientA, "tenant-a", "ends on A").E164
	duringFailover := d.create(d.clientA, "tenant-a", "ends on B during the failover").E164
	afterFailback := d.create(d.clientA, "tenant-a", "ends on B after the failback").E164
	created := d.conferences()

	// 1. Running on A, A's scheduler down: B reads A's store, and leaves
	// what runs on A alone.
	d.a.Scheduler.Kill()
	setEndTimeIn(t, d.storeA, onA, time.Now().Add(-time.Second))
	d.endChecks(d.active(d.b), 3)
	d.sameConferences(created)
	// A's next scheduler ends it.
	if _, err := d.a.AddScheduler(ctx); err != nil {
		t.Fatal(err)
	}
	d.ended("A's new scheduler to end its expired conference", onA)
	delete(created, onA)
	d.sameConferences(created)

	// 2. A fails: B runs A's conferences and ends them at their end time.
	d.a.Crash()
	d.waitPlatformState("pa", protocol.PlatformAbnormal)
	d.allOnB("A's conferences running on B", created)
	setEndTimeIn(t, d.storeA, duringFailover, time.Now().Add(-time.Second))
	d.ended("B to end an expired conference of A during the failover", duringFailover)
	delete(created, duringFailover)
	d.sameConferences(created)

	// 3. A is back, B's scheduler down: A's scheduler reads its own store
	// and leaves what runs on B alone.
	d.restartA()
	d.waitPlatformState("pa", protocol.PlatformNormal)
	d.applied(d.active(d.b), "A normal", func(m protocol.PlatformInfo) bool { return m.State == protocol.PlatformNormal })
	d.b.Scheduler.Kill()
	setEndTimeIn(t, d.storeA, afterFailback, time.Now().Add(-time.Second))
	d.endChecks(d.active(d.a), 3)
	d.sameConferences(created)
	if c, err := d.storeA.Conference(ctx, afterFailback); err != nil || c.RealPlatform != "pb" {
		t.Fatalf("after the failback %s is %+v (%v); want it running on B", afterFailback, c, err)
	}
	// B's next scheduler ends it, and tells A's CM.
	if _, err := d.b.AddScheduler(ctx); err != nil {
		t.Fatal(err)
	}
	d.ended("B's new scheduler to end an expired conference of A it runs", afterFailback)
	delete(created, afterFailback)
	testkit.Eventually(t, testkit.Wait, testkit.Cond("A's CM told of the end", func() bool {
		evs, _ := d.clientA.Events(ctx, apiclient.EventOptions{E164: afterFailback})
		for _, ev := range evs {
			if ev.Type == protocol.MAUReleaseConfNtf {
				return true
			}
		}
		return false
	}))
	d.settledAcross("after the expiries", d.a, d.b)
	d.sameConferences(created)
}

// A master that recovers restores, with its own scheduler, the conferences
// it has pending: those its backup could not restore while it was down.
func TestMasterRestoresItsOwnPendingAfterItRecovers(t *testing.T) {
	d := startDR(t, 2)
	for range 4 {
		d.create(d.clientA, "tenant-a", "pending through the failover")
	}
	created := d.conferences()
	refuse := medianode.Fault{Nack: "NODE_FULL", Only: []string{protocol.MAUMCURestoreConfReq}}
	for _, n := range d.b.Nodes {
		n.SetFault(refuse)
	}
	d.a.Crash()
	d.waitPlatformState("pa", protocol.PlatformAbnormal)
	// B tried each on its nodes and was refused: they wait in A's store,
	// still A's to run.
	testkit.Eventually(t, testkit.Wait, func() error {
		// A node sees the request before B has handled its refusal.
		for e := range created {
			tried := false
			for _, n := range d.b.Nodes {
				tried = tried || nodeGot(n, protocol.MAUMCURestoreConfReq, e)
			}
			if !tried {
				return fmt.Errorf("waiting for B to try restoring %s", e)
			}
			c, err := d.storeA.Conference(context.Background(), e)
			if err != nil || c.State != protocol.StatePendingRestore || c.RealPlatform != "pa" {
				return fmt.Errorf("waiting for %s to wait in A's store after B's refused restore: %+v (%v)", e, c, err)
			}
		}
		return nil
	})

	d.restartA()
	d.waitPlatformState("pa", protocol.PlatformNormal)
	testkit.Eventually(t, testkit.Wait, testkit.Cond("A's own scheduler to restore them on A's nodes", func() bool {
		for e := range created {
			c, err := d.storeA.Conference(context.Background(), e)
			if err != nil || c.State != protocol.StateRunning || c.RealPlatform != "pa" || !strings.HasPrefix(c.Node, "a-") {
				return false
			}
		}
		return true
	}))
	for _, n := range d.b.Nodes {
		n.SetFault(medianode.Fault{})
	}
	d.settledAcross("after A restored its own", d.a, d.b)
	d.sameConferences(created)
}

// Bookings B takes for A's tenant during a failover are counted in A's
// store against the tenant's own licence, and refused at its limit.
func TestBackupBooksAgainstTheMastersLicence(t *testing.T) {
	d := startDRWith(t, drSetup{nodes: 2, tune: func(c *config.Config) {
		for i := range c.Domains {
			if c.Domains[i].Moid == "tenant-a" {
				c.Domains[i].License["8_720p"] = 3
			}
		}
	}})
	ctx := context.Background()
	for range 2 {
		d.create(d.clientA, "tenant-a", "before the failover")
	}
	created := d.conferences()
	d.a.Crash()
	d.waitPlatformState("pa", protocol.PlatformAbnormal)
	d.allOnB("A's conferences running on B", created)

	third := d.create(d.clientB, "tenant-a", "the last one the licence allows")
	if third.Platform != "pa" || !strings.HasPrefix(third.E164, "51") {
		t.Fatalf("booked on B for A: %+v", third)
	}
	created.add(third)
	u, err := d.storeA.License(ctx, "tenant-a")
	if err != nil || u.InUse["8_720p"] != 3 {
		t.Fatalf("A's store counts %v (%v) for tenant-a; want 3 of 8_720p", u.InUse, err)
	}
	if u, err := d.storeB.License(ctx, "tenant-a"); err == nil && u.InUse["8_720p"] != 0 {
		t.Fatalf("B's store counts %v for A's tenant", u.InUse)
	}

	_, err = d.clientB.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: "one too many", Domain: "tenant-a", Scale: 8, Resolution: "720p", DurationMinutes: 60})
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != protocol.ErrLicenseExhausted {
		t.Fatalf("a fourth booking on B for tenant-a: %v; want 409 %s", err, protocol.ErrLicenseExhausted)
	}
	if want := `domain "tenant-a" has 3 of 3 conferences of class 8_720p running`; !strings.Contains(ae.Message, want) {
		t.Fatalf("refusal %q does not say %q", ae.Message, want)
	}
	d.settledAcross("after the refusal", d.b)
	d.sameConferences(created)
}
