package platform_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/platform"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

func normalA(p protocol.PlatformInfo) bool {
	return p.Observed == protocol.PlatformNormal && p.State == protocol.PlatformNormal
}

func TestMasterSwitchedOverAndBack(t *testing.T) {
	n := newPlatNet(t, nil)
	got := n.waitMaster("normal", normalA)
	want := protocol.PlatformInfo{
		Platform: moidA, Name: "Beijing", NumberSegment: "66", State: protocol.PlatformNormal, Observed: protocol.PlatformNormal,
		DRMode: protocol.DRAutomatic, SinceMs: got.SinceMs, Store: specA.Store, Bus: specA.Bus,
	}
	if got != want || got.SinceMs == 0 {
		t.Fatalf("B's view of A = %+v; want %+v", got, want)
	}
	// B started by broadcasting its view, A normal.
	n.waitHeard(moidB, 0, "B's first broadcast", func(ntf protocol.PlatformStateNtf) bool {
		return ntf.State == protocol.PlatformNormal && info(ntf.Masters, moidA).State == protocol.PlatformNormal &&
			len(ntf.Backups) == 0 && len(ntf.Rooms) == 1 && ntf.Rooms[0].Room == "room-b1"
	})
	heardB := len(n.heardOn(moidB))

	before := time.Now().UnixMilli()
	ack := n.setOwn(moidA, protocol.PlatformAbnormal, "power maintenance")
	if !ack.Manual || ack.Reason != "power maintenance" || len(ack.Rooms) != 2 || len(ack.Masters) != 0 ||
		info(ack.Backups, moidB).Platform != moidB {
		t.Fatalf("A's ACK = %+v", ack)
	}
	n.waitHeard(moidA, 0, "A's broadcast of its switchover", func(ntf protocol.PlatformStateNtf) bool {
		return ntf.State == protocol.PlatformAbnormal && ntf.Manual && ntf.Reason == "power maintenance"
	})
	failed := n.waitHeard(moidB, heardB, "B's broadcast of A abnormal", func(ntf protocol.PlatformStateNtf) bool {
		return info(ntf.Masters, moidA).State == protocol.PlatformAbnormal
	})
	b := n.heardOn(moidB)[failed]
	m := info(b.Masters, moidA)
	if b.State != protocol.PlatformNormal || m.Observed != protocol.PlatformAbnormal || m.DRMode != protocol.DRAutomatic ||
		m.Reason != "switched over by an operator: power maintenance" || m.SinceMs < before || m.Store != specA.Store {
		t.Fatalf("B's broadcast of A's failure = %+v, A %+v", b, m)
	}
	if failed != heardB {
		t.Fatalf("B broadcast before A's failure: %+v", n.heardOn(moidB)[heardB:failed])
	}

	// Switching over again changes nothing: the first reason stays.
	if ack := n.setOwn(moidA, protocol.PlatformAbnormal, "second thoughts"); ack.Reason != "power maintenance" {
		t.Fatalf("a repeated switchover changed A: %+v", ack)
	}
	ack = n.setOwn(moidA, protocol.PlatformNormal, "")
	if ack.Manual || ack.Reason != "" {
		t.Fatalf("A's ACK of the switch back = %+v", ack)
	}
	back := n.waitHeard(moidB, failed+1, "B's broadcast of A normal", func(ntf protocol.PlatformStateNtf) bool {
		return normalA(info(ntf.Masters, moidA))
	})
	if back != failed+1 {
		t.Fatalf("B broadcast between A's failure and recovery: %+v", n.heardOn(moidB)[failed+1:back])
	}
	if m := info(n.heardOn(moidB)[back].Masters, moidA); m.Reason != "" || m.SinceMs < before {
		t.Fatalf("A back to normal in B's broadcast = %+v", m)
	}
	// A sees B, its backup, normal: shown, not acted on.
	testkit.AwaitWithin(t, 15*time.Second, "A's view of B", func() bool {
		bk := info(n.a.Platforms().Backups, moidB)
		return bk.State == protocol.PlatformNormal && bk.Observed == protocol.PlatformNormal && bk.DRMode == "" && bk.Name == "Shanghai"
	})
}

// TestMasterUnreachable: a master whose PMS stops answering is unreachable
// after MissedPolls, hence abnormal (automatic); it is normal again when
// it answers.
func TestMasterUnreachable(t *testing.T) {
	n := newPlatNet(t, nil)
	n.waitMaster("normal", normalA)
	heardB := len(n.heardOn(moidB))

	if err := n.a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	lost := n.waitHeard(moidB, heardB, "B's broadcast of A unreachable", func(ntf protocol.PlatformStateNtf) bool {
		return info(ntf.Masters, moidA).State == protocol.PlatformAbnormal
	})
	m := info(n.heardOn(moidB)[lost].Masters, moidA)
	if want := fmt.Sprintf("unreachable: no answer to %d polls", testMisses); m.Observed != protocol.PlatformUnreachable || m.Reason != want {
		t.Fatalf("A unreachable in B's broadcast = %+v", m)
	}
	n.a = n.start(n.embA, n.optsA)
	back := n.waitHeard(moidB, lost+1, "B's broadcast of A back", func(ntf protocol.PlatformStateNtf) bool {
		return normalA(info(ntf.Masters, moidA))
	})
	if back != lost+1 {
		t.Fatalf("B broadcast between A's loss and return: %+v", n.heardOn(moidB)[lost+1:back])
	}
}

// TestMasterBusDown: the same when A's whole bus goes away and comes back
// on the same address; every connection to it reconnects.
func TestMasterBusDown(t *testing.T) {
	n := buildPlatNet(t, true, nil)
	n.waitMaster("normal", normalA)
	heardB := len(n.heardOn(moidB))

	addr := n.stopBusA()
	lost := n.waitHeard(moidB, heardB, "B's broadcast of A unreachable", func(ntf protocol.PlatformStateNtf) bool {
		m := info(ntf.Masters, moidA)
		return m.State == protocol.PlatformAbnormal && m.Observed == protocol.PlatformUnreachable
	})
	n.startBusA(addr)
	n.waitHeard(moidB, lost+1, "B's broadcast of A back", func(ntf protocol.PlatformStateNtf) bool {
		return normalA(info(ntf.Masters, moidA))
	})
}

func TestDRModes(t *testing.T) {
	n := newPlatNet(t, nil)
	n.waitMaster("normal", normalA)
	heardB := len(n.heardOn(moidB))
	modeIs := func(mode, state string) func(protocol.PlatformStateNtf) bool {
		return func(ntf protocol.PlatformStateNtf) bool {
			m := info(ntf.Masters, moidA)
			return m.DRMode == mode && m.State == state
		}
	}
	// switchA switches A over or back and waits until B observed it.
	switchA := func(state string) {
		t.Helper()
		n.setOwn(moidA, state, "drill")
		n.waitMaster("observed "+state, func(p protocol.PlatformInfo) bool { return p.Observed == state })
	}

	// manual-on fails A over while it is observed normal, and stays so
	// whatever A does.
	m := info(n.setDR(protocol.DRManualOn).Masters, moidA)
	if m.State != protocol.PlatformAbnormal || m.Observed != protocol.PlatformNormal || m.Reason != platform.ReasonManualOn {
		t.Fatalf("manual-on: A = %+v", m)
	}
	on := n.waitHeard(moidB, heardB, "manual-on", modeIs(protocol.DRManualOn, protocol.PlatformAbnormal))
	n.setDR(protocol.DRManualOn) // the same mode: no change
	switchA(protocol.PlatformAbnormal)
	switchA(protocol.PlatformNormal)

	// manual-off keeps A normal while it is observed abnormal.
	n.setDR(protocol.DRManualOff)
	off := n.waitHeard(moidB, on+1, "manual-off", modeIs(protocol.DRManualOff, protocol.PlatformNormal))
	if off != on+1 {
		t.Fatalf("B broadcast under manual-on: %+v", n.heardOn(moidB)[on+1:off])
	}
	switchA(protocol.PlatformAbnormal)
	if m := info(n.b.Platforms().Masters, moidA); m.State != protocol.PlatformNormal || !strings.Contains(m.Reason, platform.ReasonManualOff) {
		t.Fatalf("manual-off, A switched over: %+v", m)
	}

	// closed: the scheduler is not told, whatever is observed.
	m = info(n.setDR(protocol.DRClosed).Masters, moidA)
	if m.State != protocol.PlatformNormal || m.Observed != protocol.PlatformAbnormal || !strings.Contains(m.Reason, platform.ReasonClosed) {
		t.Fatalf("closed: A = %+v", m)
	}
	closed := n.waitHeard(moidB, off+1, "closed", modeIs(protocol.DRClosed, protocol.PlatformNormal))
	if closed != off+1 {
		t.Fatalf("B broadcast under manual-off: %+v", n.heardOn(moidB)[off+1:closed])
	}
	if err := n.a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	m = n.waitMaster("unreachable while closed", func(p protocol.PlatformInfo) bool { return p.Observed == protocol.PlatformUnreachable })
	if m.State != protocol.PlatformNormal {
		t.Fatalf("closed, A unreachable: %+v", m)
	}

	// Back to automatic: A is unreachable, so abnormal.
	n.setDR(protocol.DRAutomatic)
	auto := n.waitHeard(moidB, closed+1, "automatic", modeIs(protocol.DRAutomatic, protocol.PlatformAbnormal))
	if auto != closed+1 {
		t.Fatalf("B broadcast while closed: %+v", n.heardOn(moidB)[closed+1:auto])
	}
}

func TestPlatformConfig(t *testing.T) {
	n := newPlatNet(t, nil)
	n.waitMaster("normal", normalA)
	config := func(on, moid string) (protocol.PlatformInfo, error) {
		var ntf protocol.PlatformConfigNtf
		err := n.call(on, protocol.PlatformStateReqMsg{Type: protocol.PlatformConfigRq, Platform: moid}, &ntf)
		if err == nil && ntf.Type != protocol.PlatformConfigNotify {
			t.Fatalf("PLATFORM_CONFIG_REQ answered %+v", ntf)
		}
		return ntf.Platform, err
	}
	for _, moid := range []string{"", moidB} {
		got, err := config(moidB, moid)
		want := protocol.PlatformInfo{Platform: moidB, Name: "Shanghai", NumberSegment: "77", State: protocol.PlatformNormal,
			SinceMs: got.SinceMs, Store: specB.Store, Bus: specB.Bus}
		if err != nil || got != want || got.SinceMs == 0 {
			t.Fatalf("B's own config (%q) = %+v, %v", moid, got, err)
		}
	}
	got, err := config(moidB, moidA)
	if err != nil || !normalA(got) || got.DRMode != protocol.DRAutomatic || got.Bus != specA.Bus || got.NumberSegment != "66" {
		t.Fatalf("A's config as B knows it = %+v, %v", got, err)
	}
	testkit.AwaitWithin(t, 15*time.Second, "A polled B", func() bool { return info(n.a.Platforms().Backups, moidB).Observed == protocol.PlatformNormal })
	got, err = config(moidA, moidB)
	if err != nil || got.DRMode != "" || got.State != protocol.PlatformNormal || got.Store != specB.Store {
		t.Fatalf("B's config as A knows it = %+v, %v", got, err)
	}
	_, err = config(moidB, "plat-z")
	wantNackOf(t, err, platform.PlatformConfigNack, platform.CodeUnknownPlatform, `"plat-z" is neither platform "plat-b" nor one of its masters or backups (plat-a (master))`)
	if _, err := n.b.PlatformConfig("plat-z"); err == nil {
		t.Fatal("PlatformConfig of an unknown platform")
	}
}

func TestPlatformRequestsRefused(t *testing.T) {
	n := newPlatNet(t, nil)
	cases := []struct {
		name            string
		on              string
		req             any
		typ, code, want string
	}{
		{"unreachable is no own state", moidA, protocol.PlatformSetReq{Type: protocol.PlatformSetRq, State: protocol.PlatformUnreachable},
			protocol.PlatformSetNack, protocol.ErrBadRequest, `state "unreachable" must be "normal" (switch back) or "abnormal" (switch over)`},
		{"long reason", moidA, protocol.PlatformSetReq{Type: protocol.PlatformSetRq, State: protocol.PlatformAbnormal, Reason: strings.Repeat("x", 257)},
			protocol.PlatformSetNack, protocol.ErrBadRequest, "the reason is 257 bytes; keep it to 256"},
		{"unknown platform", moidB, protocol.PlatformDRSetReq{Type: protocol.PlatformDRSetRq, Platform: "plat-z", Mode: protocol.DRClosed},
			protocol.PlatformDRSetNack, platform.CodeUnknownPlatform, `"plat-z" is neither platform "plat-b"`},
		{"a backup", moidA, protocol.PlatformDRSetReq{Type: protocol.PlatformDRSetRq, Platform: moidB, Mode: protocol.DRClosed},
			protocol.PlatformDRSetNack, protocol.ErrBadRequest, `"plat-b" is a backup of platform "plat-a", not a master`},
		{"itself", moidB, protocol.PlatformDRSetReq{Type: protocol.PlatformDRSetRq, Platform: moidB, Mode: protocol.DRClosed},
			protocol.PlatformDRSetNack, protocol.ErrBadRequest, `"plat-b" is this platform itself`},
		{"bad mode", moidB, protocol.PlatformDRSetReq{Type: protocol.PlatformDRSetRq, Platform: moidA, Mode: "sometimes"},
			protocol.PlatformDRSetNack, protocol.ErrBadRequest, `DR mode "sometimes" of "plat-a": use automatic, manual-on, manual-off, closed`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantNackOf(t, n.call(c.on, c.req, nil), c.typ, c.code, c.want)
		})
	}
	if v := n.a.Platforms(); v.State != protocol.PlatformNormal {
		t.Fatalf("A after the refusals: %+v", v)
	}
	if m := info(n.b.Platforms().Masters, moidA); m.DRMode != protocol.DRAutomatic {
		t.Fatalf("B's A after the refusals: %+v", m)
	}
}

func TestPlatformHook(t *testing.T) {
	n := newPlatNet(t, nil)
	var (
		mu    sync.Mutex
		views []protocol.PlatformStateNtf
	)
	n.b.OnPlatformState(func(v protocol.PlatformStateNtf) {
		mu.Lock()
		views = append(views, v)
		mu.Unlock()
	})
	seen := func(cond func(protocol.PlatformInfo) bool) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(views) > 0 && cond(info(views[len(views)-1].Masters, moidA))
		}
	}
	// Registered after Start: told the view at once.
	testkit.AwaitWithin(t, 15*time.Second, "the hook told of A", seen(func(p protocol.PlatformInfo) bool { return p.Platform == moidA }))
	n.waitMaster("normal", normalA)
	n.setOwn(moidA, protocol.PlatformAbnormal, "")
	testkit.AwaitWithin(t, 15*time.Second, "the hook told of A's failure", seen(func(p protocol.PlatformInfo) bool {
		return p.State == protocol.PlatformAbnormal && p.Reason == platform.ReasonSwitchedOver
	}))
}

// TestMasterOutOfReach: Start does not wait for masters. One without a bus
// connection is unreachable from the start; one whose bus has no PMS is
// after MissedPolls.
func TestMasterOutOfReach(t *testing.T) {
	t.Run("no connection", func(t *testing.T) {
		n := newPlatNet(t, func(_, b *platform.Options) { b.Peers = nil })
		m := info(n.b.Platforms().Masters, moidA)
		if m.State != protocol.PlatformAbnormal || m.Observed != protocol.PlatformUnreachable || m.Reason != "unreachable: no connection to its bus" {
			t.Fatalf("A = %+v", m)
		}
		n.waitHeard(moidB, 0, "B's first broadcast", func(ntf protocol.PlatformStateNtf) bool {
			return info(ntf.Masters, moidA).State == protocol.PlatformAbnormal
		})
	})
	t.Run("nobody answers", func(t *testing.T) {
		n := newPlatNet(t, nil)
		empty := testkit.BusServer(t, bus.EmbeddedOptions{NoListen: true})
		n.optsB.Peers = map[string]*bus.Bus{moidA: n.connect(empty, "pms-b-to-nowhere")}
		n.optsB.StartGrace = testPoll
		heard := len(n.heardOn(moidB))
		n.restart(moidB)
		// Its first broadcast, before any poll: A not heard of yet, normal.
		n.waitHeard(moidB, heard, "the restarted B's first broadcast", func(ntf protocol.PlatformStateNtf) bool {
			m := info(ntf.Masters, moidA)
			return m.State == protocol.PlatformNormal && m.Observed == ""
		})
		m := n.waitMaster("unreachable", func(p protocol.PlatformInfo) bool { return p.State == protocol.PlatformAbnormal })
		if m.Observed != protocol.PlatformUnreachable {
			t.Fatalf("A = %+v", m)
		}
	})
}

// TestMasterStartingAfterItsBackup: platforms started together come up in
// any order. A backup whose master has not answered yet gives it
// StartGrace before its missed polls count, so a master that starts a
// little later is never declared failed and taken over while it starts.
func TestMasterStartingAfterItsBackup(t *testing.T) {
	n := newPlatNet(t, nil)
	n.waitMaster("normal", normalA)
	if err := n.a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// B starts again while A is down: A has never answered this B.
	var polls atomic.Int64
	sub, err := n.busA.Subscribe(protocol.SubjectPMS(moidA), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		polls.Add(1) // heard, never answered: each poll is missed
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.busA.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	heard := len(n.heardOn(moidB))
	n.restart(moidB)
	// Twice the misses that make a platform unreachable once it answered.
	testkit.AwaitWithin(t, 15*time.Second, "B's polls of the absent A", func() bool { return polls.Load() >= 2*testMisses })
	_ = sub.Unsubscribe()
	n.a = n.start(n.embA, n.optsA)
	n.waitMaster("normal once A answers", func(p protocol.PlatformInfo) bool {
		return p.Observed == protocol.PlatformNormal
	})
	for _, ntf := range n.heardOn(moidB)[heard:] {
		if ntf.Type == protocol.PlatformStateNotify && ntf.Platform == moidB {
			if m := info(ntf.Masters, moidA); m.State == protocol.PlatformAbnormal {
				t.Fatalf("B declared A failed while it was starting: %+v", m)
			}
		}
	}
	if m := info(n.b.Platforms().Masters, moidA); m.State != protocol.PlatformNormal {
		t.Fatalf("A as B holds it = %+v", m)
	}
}

// TestMutualBackup: two platforms that back each other up each see the
// other as master and backup, polled once.
func TestMutualBackup(t *testing.T) {
	n := newPlatNet(t, func(a, b *platform.Options) {
		a.Masters = []platform.PlatformSpec{specB}
		b.Backups = []platform.PlatformSpec{specA}
	})
	n.waitMaster("normal", normalA)
	n.setOwn(moidB, protocol.PlatformAbnormal, "")
	testkit.AwaitWithin(t, 15*time.Second, "A's view of B", func() bool {
		v := n.a.Platforms()
		return info(v.Masters, moidB).State == protocol.PlatformAbnormal && info(v.Backups, moidB).State == protocol.PlatformAbnormal
	})
	if v := n.b.Platforms(); len(v.Masters) != 1 || len(v.Backups) != 1 || info(v.Backups, moidA).DRMode != "" {
		t.Fatalf("B's view = %+v", v)
	}
}
