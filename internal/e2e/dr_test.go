package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/api"
	"github.com/convene/convene/internal/protocol"
)

// allOnB waits until every conference of A's store runs on one of B's
// nodes.
func (d *dr) allOnB(what string) {
	d.t.Helper()
	eventually(d.t, what, func() bool {
		confs, err := d.b.PeerStore("pa").AllConferences(context.Background())
		if err != nil {
			return false
		}
		for _, c := range confs {
			if c.State != protocol.StateRunning || c.RealPlatform != "pb" || !strings.HasPrefix(c.Node, "b-") {
				return false
			}
		}
		return true
	})
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
	tpl, err := d.clientA.CreateTemplate(ctx, api.TemplateRequest{Name: "A's board", Domain: "tenant-a", Scale: 8, Resolution: "720p", DurationMinutes: 60})
	if err != nil {
		t.Fatal(err)
	}
	// A monitoring session on A: it stops when the conference moves to B.
	if _, err := d.clientA.StartMonitor(ctx, onA[0], api.MonitorRequest{IP: "10.1.1.1", Port: 7000}); err != nil {
		t.Fatal(err)
	}
	d.settledAcross("before the failure", d.a, d.b)
	beforeB := map[string]string{}
	for _, e := range onB {
		c, _ := d.clientB.Conference(ctx, e)
		beforeB[e] = c.Node
	}

	d.a.Crash()
	d.waitPlatformState("pa", protocol.PlatformAbnormal)
	d.allOnB("A's conferences running on B")
	d.settledAcross("after the failover", d.b)

	// B's own conferences did not move.
	for e, n := range beforeB {
		if c, _ := d.clientB.Conference(ctx, e); c.Node != n {
			t.Fatalf("B's own %s moved from %s to %s", e, n, c.Node)
		}
	}
	// A's conferences are in A's store, counted once against A's tenant.
	u, err := d.b.PeerStore("pa").License(ctx, "tenant-a")
	if err != nil || u.InUse["8_720p"] != len(onA) {
		t.Fatalf("tenant-a counts %v (%v), want %d", u.InUse, err, len(onA))
	}
	// B's API and registry know them.
	for _, e := range onA {
		c, err := d.clientB.Conference(ctx, e)
		if err != nil || c.RealPlatform != "pb" || c.Platform != "pa" {
			t.Fatalf("B's API shows %s as %+v (%v)", e, c, err)
		}
		eventually(t, "B's registry to list "+e, func() bool {
			r, err := d.clientB.Registry(ctx, e)
			return err == nil && strings.HasPrefix(r.Node, "b-")
		})
	}
	eventually(t, "B's CM told the monitoring session stopped", func() bool {
		evs, _ := d.clientB.Events(ctx, api.EventOptions{E164: onA[0]})
		for _, ev := range evs {
			if ev.Type == protocol.MAUMonitorStoppedNtf {
				return true
			}
		}
		return false
	})
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
	eventually(t, "A's template in B's registry", func() bool {
		_, err := d.clientB.Registry(ctx, tpl.E164)
		return err == nil
	})
	// New bookings for A's tenant are taken by B, numbered in A's segment,
	// written to A's store.
	n := d.create(d.clientB, "tenant-a", "booked during the failover")
	if !strings.HasPrefix(n.E164, "51") || n.Platform != "pa" || n.RealPlatform != "pb" {
		t.Fatalf("booked during the failover: %+v", n)
	}
	if ok, _ := d.b.PeerStore("pa").Exists(ctx, n.E164); !ok {
		t.Fatal("the booking is not in A's store")
	}
	d.settledAcross("after booking on B for A", d.b)
}

func TestFailbackKeepsMovedConferencesControlledFromTheMaster(t *testing.T) {
	d := startDR(t, 2)
	ctx := context.Background()
	var nums []string
	for range 5 {
		nums = append(nums, d.create(d.clientA, "tenant-a", "moves").E164)
	}
	d.a.Crash()
	d.waitPlatformState("pa", protocol.PlatformAbnormal)
	d.allOnB("A's conferences running on B")

	// A comes back: B hands the service back, the moved conferences stay.
	d.startPlatform("pa")
	d.waitPlatformState("pa", protocol.PlatformNormal)
	time.Sleep(500 * time.Millisecond) // A's start-up grace and a list period: it must move nothing back
	d.settledAcross("after the failback", d.a, d.b)
	for _, e := range nums {
		c, err := d.clientA.Conference(ctx, e)
		if err != nil || c.RealPlatform != "pb" || !strings.HasPrefix(c.Node, "b-") {
			t.Fatalf("after failback %s is %+v (%v); want it still on B", e, c, err)
		}
	}
	// A's CM controls them: delay, rename, password, monitoring, end.
	e := nums[0]
	d2, err := d.clientA.DelayConference(ctx, e, 30)
	if err != nil {
		t.Fatalf("delay from A: %v", err)
	}
	// The node hears of the new end by a notice that follows the answer.
	eventually(t, "B's node to hold the new end time", func() bool {
		for _, n := range d.b.Nodes {
			for _, h := range n.Conferences() {
				if h.E164 == e {
					return h.EndTime == d2.EndsAt.UnixMilli()
				}
			}
		}
		return false
	})
	eventually(t, "A's CM told of the new length", func() bool {
		evs, _ := d.clientA.Events(ctx, api.EventOptions{E164: e})
		for _, ev := range evs {
			if ev.Type == protocol.MAUConfDurationNtf {
				return true
			}
		}
		return false
	})
	name, pw := "renamed from A", "pw"
	if _, err := d.clientA.UpdateConference(ctx, e, api.UpdateConferenceRequest{Name: &name, Password: &pw}); err != nil {
		t.Fatalf("rename from A: %v", err)
	}
	if _, err := d.clientA.StartMonitor(ctx, e, api.MonitorRequest{IP: "10.0.0.1", Port: 5000}); err != nil {
		t.Fatalf("monitor from A: %v", err)
	}
	if err := d.clientA.EndConference(ctx, e); err != nil {
		t.Fatalf("end from A: %v", err)
	}
	eventually(t, "B's node to let it go", func() bool {
		for _, n := range d.b.Nodes {
			if n.Hosts(e) {
				return false
			}
		}
		return true
	})
	u, _ := d.a.Store.License(ctx, "tenant-a")
	if u.InUse["8_720p"] != len(nums)-1 {
		t.Fatalf("tenant-a counts %d, want %d", u.InUse["8_720p"], len(nums)-1)
	}
	d.settledAcross("after ending one from A", d.a, d.b)
}

func TestManualSwitchoverAndBack(t *testing.T) {
	d := startDR(t, 2)
	ctx := context.Background()
	for range 4 {
		d.create(d.clientA, "tenant-a", "switched")
	}
	if _, err := d.clientA.FailPlatform(ctx, "pa", "datacenter maintenance"); err != nil {
		t.Fatal(err)
	}
	d.waitPlatformState("pa", protocol.PlatformAbnormal)
	d.allOnB("A's conferences running on B")
	// A's nodes let their copies go; A books nothing meanwhile.
	eventually(t, "A's nodes empty", func() bool {
		for _, n := range d.a.Nodes {
			if len(n.Conferences()) > 0 {
				return false
			}
		}
		return true
	})
	if _, err := d.clientA.CreateConference(ctx, api.CreateConferenceRequest{Name: "x", Domain: "tenant-a", Scale: 8, Resolution: "720p", DurationMinutes: 5}); apiCode(err) != protocol.ErrPlatformNotServed {
		t.Fatalf("booking on a switched-over platform: %v", err)
	}
	d.settledAcross("during the switchover", d.a, d.b)
	if _, err := d.clientA.RecoverPlatform(ctx, "pa"); err != nil {
		t.Fatal(err)
	}
	d.waitPlatformState("pa", protocol.PlatformNormal)
	eventually(t, "A books again", func() bool {
		_, err := d.clientA.CreateConference(ctx, api.CreateConferenceRequest{Name: "back", Domain: "tenant-a", Scale: 8, Resolution: "720p", DurationMinutes: 5})
		return err == nil
	})
	d.settledAcross("after switching back", d.a, d.b)
}

func TestClosedDRNeverTakesOver(t *testing.T) {
	d := startDR(t, 1)
	ctx := context.Background()
	e := d.create(d.clientA, "tenant-a", "stays").E164
	if _, err := d.clientB.SetDRMode(ctx, "pa", protocol.DRClosed); err != nil {
		t.Fatal(err)
	}
	d.a.Crash()
	time.Sleep(2 * time.Second) // polls miss, A is unreachable: but closed means B is not told
	c, err := d.b.PeerStore("pa").Conference(ctx, e)
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
	d.allOnB("the conference running on B after manual-on")
}
