package medianode

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

func TestNewChecksOptions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	good := Options{ID: "sim-1", Room: "room-a1", Platform: "plat-a"}
	cases := []struct {
		name string
		edit func(o *Options)
	}{
		{"id missing", func(o *Options) { o.ID = "" }},
		{"id not a subject token", func(o *Options) { o.ID = "sim.1" }},
		{"platform not a subject token", func(o *Options) { o.Platform = "plat a" }},
		{"room missing", func(o *Options) { o.Room = "" }},
		{"negative capacity", func(o *Options) { o.Capacity = -1 }},
		{"negative heartbeat", func(o *Options) { o.HeartbeatInterval = -time.Second }},
		{"negative conflist interval", func(o *Options) { o.ConfListInterval = -time.Second }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			if _, err := New(o, h.sched, nil); !errors.Is(err, ErrBadOptions) {
				t.Fatalf("New = %v, want ErrBadOptions", err)
			}
		})
	}
	t.Run("no bus", func(t *testing.T) {
		if _, err := New(good, nil, nil); !errors.Is(err, ErrBadOptions) {
			t.Fatalf("New = %v, want ErrBadOptions", err)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		n, err := New(good, h.sched, nil)
		if err != nil {
			t.Fatal(err)
		}
		o := n.opts
		if o.IP != defaultIP || o.Capacity != defaultCapacity || o.HeartbeatInterval != defaultHeartbeatInterval || o.ConfListInterval != defaultConfListInterval {
			t.Fatalf("defaults not applied: %+v", o)
		}
	})
}

func TestRegistersOnceRMSAnswers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	lists := h.listen(protocol.SubjectFromNodes(h.platform))
	// The node's own intervals are an hour: beats and lists only arrive
	// if it takes the ACK's.
	n, _ := h.node(Options{Capacity: 5, Legacy: true, HeartbeatInterval: time.Hour, ConfListInterval: time.Hour})
	// RMS comes up after the node and refuses it twice first.
	rms := h.rms(2, protocol.RegisterAck{HeartbeatIntervalMs: 10, ConfListIntervalMs: 20})

	testkit.Eventually(t, testkit.Wait, testkit.Cond("three heartbeats at the ACK's interval", func() bool { return rms.beatCount() >= 3 }))
	testkit.Eventually(t, testkit.Wait, testkit.Cond("two conference lists at the ACK's interval", func() bool { return len(lists.of(protocol.MCUConfListNtf)) >= 2 }))

	regs, _, _, _ := rms.counts()
	if regs < 3 {
		t.Fatalf("registrations = %d, want at least 3 (two refused, then one ACKed)", regs)
	}
	rms.mu.Lock()
	got := rms.registers[0]
	rms.mu.Unlock()
	want := protocol.RegisterReq{Type: protocol.MCURegisterReq, Node: "sim-1", IP: defaultIP, PID: n.PID(), Room: "room-a1", Platform: h.platform, Capacity: 5, Legacy: true, Kind: "mcu"}
	if got != want {
		t.Fatalf("registration = %+v, want %+v", got, want)
	}
}

func TestHeartbeatCarriesCountAndRegistration(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rms := h.rms(0, protocol.RegisterAck{})
	n, _ := h.node(Options{ID: "sim-7", IP: "10.0.0.7", Capacity: 9, Legacy: true})
	h.create("sim-7", "1001")
	h.create("sim-7", "1002")

	var beat protocol.HeartbeatNtf
	testkit.Eventually(t, testkit.Wait, testkit.Cond("a heartbeat counting two conferences", func() bool {
		rms.mu.Lock()
		defer rms.mu.Unlock()
		for _, b := range rms.beats {
			if b.Confs == 2 {
				beat = b
				return true
			}
		}
		return false
	}))
	want := protocol.HeartbeatNtf{Type: protocol.MCUHeartbeatNtf, Node: "sim-7", IP: "10.0.0.7", PID: n.PID(), Room: "room-a1", Platform: h.platform, Kind: "mcu", Legacy: true, Confs: 2, Capacity: 9}
	if beat != want {
		t.Fatalf("heartbeat = %+v, want %+v", beat, want)
	}
}

func TestKillStopsEverything(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rms := h.rms(0, protocol.RegisterAck{})
	n, nb := h.node(Options{})
	h.create("sim-1", "1001")
	testkit.Eventually(t, testkit.Wait, testkit.Cond("heartbeats", func() bool { return rms.beatCount() >= 2 }))
	oldPID := n.PID()

	n.Kill()
	settled := h.settle(rms, nb)
	quiet(200 * time.Millisecond) // twenty heartbeat intervals
	if got := rms.beatCount(); got != settled {
		t.Fatalf("heartbeats after Kill: %d, want %d", got, settled)
	}
	if _, _, unregs, _ := rms.counts(); unregs != 0 {
		t.Fatalf("a killed node said goodbye %d times", unregs)
	}
	if n.Running() || len(n.Conferences()) != 0 {
		t.Fatalf("killed node: running %v, conferences %v", n.Running(), n.Conferences())
	}
	err := h.call("sim-1", protocol.NodeConfReq{Type: protocol.MAUMCUCreateConfReq, Conf: protocol.Conference{E164: "1002"}}, nil)
	if !errors.Is(err, bus.ErrNoResponders) {
		t.Fatalf("create on a killed node = %v, want no responders", err)
	}
	if err := n.End("1001"); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("End on a killed node = %v, want ErrNotRunning", err)
	}

	// Restarted, it registers again with a new pid.
	regs, _, _, _ := rms.counts()
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n.PID() == oldPID {
		t.Fatalf("restarted node kept pid %s", oldPID)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("a new registration", func() bool { r, _, _, _ := rms.counts(); return r > regs }))
	h.create("sim-1", "1003")
}

func TestShutdownSaysGoodbye(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rms := h.rms(0, protocol.RegisterAck{})
	n, nb := h.node(Options{})
	h.create("sim-1", "1001")
	testkit.Eventually(t, testkit.Wait, testkit.Cond("heartbeats", func() bool { return rms.beatCount() >= 1 }))

	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the unregister notice", func() bool { _, _, u, _ := rms.counts(); return u == 1 }))
	rms.mu.Lock()
	bye := rms.unregs[0]
	rms.mu.Unlock()
	if bye.Type != protocol.MCUUnregisterNtf || bye.Node != "sim-1" || bye.PID != n.PID() {
		t.Fatalf("unregister = %+v", bye)
	}
	settled := h.settle(rms, nb)
	quiet(200 * time.Millisecond)
	if got := rms.beatCount(); got != settled {
		t.Fatalf("heartbeats after Shutdown: %d, want %d", got, settled)
	}
	err := h.call("sim-1", protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: "1001"}, nil)
	if !errors.Is(err, bus.ErrNoResponders) {
		t.Fatalf("release on a stopped node = %v, want no responders", err)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown = %v, want nil", err)
	}
}

func TestStartTwice(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n, _ := h.node(Options{})
	if err := n.Start(context.Background()); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Start = %v, want ErrRunning", err)
	}
}

func TestFixedPIDSurvivesRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n, _ := h.node(Options{PID: "4242"})
	n.Kill()
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n.PID() != "4242" {
		t.Fatalf("pid = %s, want the configured 4242", n.PID())
	}
}

func TestConfList(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.rms(0, protocol.RegisterAck{})
	lists := h.listen(protocol.SubjectFromNodes(h.platform))
	n, _ := h.node(Options{IP: "10.0.0.1", Room: "room-b2", ConfListInterval: time.Hour})
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the conference list sent on registering", func() bool { return len(lists.of(protocol.MCUConfListNtf)) == 1 }))

	h.create("sim-1", "1001")
	n.Inject("1002", 12345)
	if err := n.ReportConfList(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the reported list", func() bool { return len(lists.of(protocol.MCUConfListNtf)) == 2 }))
	var got protocol.ConfListNtf
	lists.last(t, protocol.MCUConfListNtf, &got)
	if got.Node != "sim-1" || got.IP != "10.0.0.1" || got.PID != n.PID() || got.Room != "room-b2" || got.SentAtMs == 0 {
		t.Fatalf("list header = %+v", got)
	}
	created := map[string]int64{}
	for _, c := range n.Conferences() {
		created[c.E164] = c.CreateTime
	}
	if len(got.Confs) != 2 {
		t.Fatalf("list = %+v, want 1001 and 1002", got.Confs)
	}
	for _, e := range got.Confs {
		if want, ok := created[e.E164]; !ok || e.CreateTime != want {
			t.Fatalf("entry %+v, want createtime %d (hosted %v)", e, want, ok)
		}
	}
	if created["1002"] != 12345 {
		t.Fatalf("injected createtime = %d, want 12345", created["1002"])
	}

	// An empty list is [], not null.
	n.dropConfs()
	if err := n.ReportConfList(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the empty list", func() bool { return len(lists.of(protocol.MCUConfListNtf)) == 3 }))
	msgs := lists.of(protocol.MCUConfListNtf)
	if data := string(msgs[2].Data); !strings.Contains(data, `"confdatainfo":[]`) {
		t.Fatalf("empty list encoded as %s", data)
	}
}

func TestConfListIsPeriodic(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.rms(0, protocol.RegisterAck{})
	lists := h.listen(protocol.SubjectFromNodes(h.platform))
	h.node(Options{})
	testkit.Eventually(t, testkit.Wait, testkit.Cond("three conference lists", func() bool { return len(lists.of(protocol.MCUConfListNtf)) >= 3 }))
}

func TestReceivedLogIsBounded(t *testing.T) {
	r := receivedLog{limit: 3}
	for _, e := range []string{"1", "2", "3", "4", "5"} {
		r.add("T", e)
	}
	got := r.snapshot()
	if len(got) != 3 || got[0].E164 != "3" || got[1].E164 != "4" || got[2].E164 != "5" {
		t.Fatalf("log = %+v, want 3, 4, 5", got)
	}
}

func TestGetConfListCmdSendsTheListNow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.rms(0, protocol.RegisterAck{})
	lists := h.listen(protocol.SubjectFromNodes(h.platform))
	n, _ := h.node(Options{ConfListInterval: time.Hour})
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the list sent on registering", func() bool { return len(lists.of(protocol.MCUConfListNtf)) == 1 }))
	n.Inject("5551", 0)
	if err := h.sched.Publish(protocol.SubjectToNode("sim-1"), protocol.GetConfListCmd{Type: protocol.MAUMCUGetConfListCmd}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("a list sent on request", func() bool { return len(lists.of(protocol.MCUConfListNtf)) == 2 }))
	var got protocol.ConfListNtf
	lists.last(t, protocol.MCUConfListNtf, &got)
	if len(got.Confs) != 1 || got.Confs[0].E164 != "5551" {
		t.Fatalf("list on request = %+v", got.Confs)
	}
}
