package resources_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/resources"
	"github.com/convene/convene/internal/testkit"
)

func TestRegister(t *testing.T) {
	good := reg(mcu("mcu-1", "room-1", 0, 10))
	cases := []struct {
		name     string
		edit     func(r *protocol.RegisterReq)
		wantCode string // "" for an ACK
		wantText string // in the NACK's sentence
	}{
		{name: "mcu", edit: func(*protocol.RegisterReq) {}},
		{name: "vrs", edit: func(r *protocol.RegisterReq) { r.Kind = "vrs" }},
		{name: "legacy", edit: func(r *protocol.RegisterReq) { r.Legacy = true }},
		{name: "unknown room", edit: func(r *protocol.RegisterReq) { r.Room = "room-9" },
			wantCode: protocol.ErrUnknownRoom, wantText: `room "room-9" is not a server room of platform "plat-a"`},
		{name: "id with a dot", edit: func(r *protocol.RegisterReq) { r.Node = "mcu.1" },
			wantCode: protocol.ErrBadRequest, wantText: `node id "mcu.1"`},
		{name: "empty id", edit: func(r *protocol.RegisterReq) { r.Node = "" },
			wantCode: protocol.ErrBadRequest, wantText: `node id ""`},
		{name: "other platform", edit: func(r *protocol.RegisterReq) { r.Platform = "plat-b" },
			wantCode: protocol.ErrBadRequest, wantText: "platformmoid"},
		{name: "no capacity", edit: func(r *protocol.RegisterReq) { r.Capacity = 0 },
			wantCode: protocol.ErrBadRequest, wantText: "capacity 0"},
		{name: "unknown kind", edit: func(r *protocol.RegisterReq) { r.Kind = "sfu" },
			wantCode: protocol.ErrBadRequest, wantText: `kind "sfu"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := fast
			opts.ConfListInterval = 2 * time.Second
			h := newHarness(t, opts)
			req := good
			tc.edit(&req)
			ack, err := h.register(req)
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("register: %v", err)
				}
				want := protocol.RegisterAck{Type: protocol.RMSRegisterAck, HeartbeatIntervalMs: 100, ConfListIntervalMs: 2000}
				if ack != want {
					t.Fatalf("ack = %+v, want %+v", ack, want)
				}
				got := h.waitNotices(req.Node, 1)[0]
				want1 := protocol.NodeStateNtf{Type: protocol.RMSNodeStateNtf, Node: req.Node, IP: req.IP, PID: req.PID,
					Room: req.Room, State: protocol.NodeUp, Reason: resources.ReasonRegistered, Legacy: req.Legacy}
				if got != want1 {
					t.Fatalf("notice = %+v, want %+v", got, want1)
				}
				n, ok := h.node(req.Node)
				wantKind := cmpOr(req.Kind, "mcu")
				if !ok || n.State != protocol.NodeUp || n.Kind != wantKind || n.Capacity != 10 || n.Room != "room-1" {
					t.Fatalf("node = %+v (known %v)", n, ok)
				}
				return
			}
			if code := nackCode(err); code != tc.wantCode {
				t.Fatalf("register: err %v, want a NACK with %s", err, tc.wantCode)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("NACK %q does not say %q", err, tc.wantText)
			}
			// A refused node is neither known nor announced.
			h.barrier()
			if _, ok := h.node(req.Node); ok {
				t.Fatalf("refused node %q is in the node list", req.Node)
			}
			if got := h.noticesFor(req.Node); len(got) != 0 {
				t.Fatalf("refused node was announced: %+v", got)
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestHeartbeatFromBadNodeIsIgnored(t *testing.T) {
	h := newHarness(t, fast)
	h.beat(mcu("stray", "room-9", 0, 10))
	h.beat(mcu("no-cap", "room-1", 0, 0))
	h.barrier()
	for _, id := range []string{"stray", "no-cap"} {
		if _, ok := h.node(id); ok {
			t.Errorf("node %s was learned from an invalid heartbeat", id)
		}
	}
}

func TestHeartbeatKeepsNodeUp(t *testing.T) {
	h := newHarness(t, fast)
	hb := mcu("mcu-1", "room-1", 2, 10)
	if _, err := h.register(reg(hb)); err != nil {
		t.Fatal(err)
	}
	bt := h.keepBeating(hb)
	// 60 beats at a third of the interval span 20 intervals: two and a
	// half times the 8-interval deadline.
	testkit.Eventually(h.t, 15*time.Second, testkit.Cond("60 beats", func() bool { return bt.sent.Load() >= 60 }))
	if !h.nodeUp("mcu-1") {
		t.Fatalf("node went down while beating: %+v", h.svc.Nodes())
	}
	bt.halt()
	got := transitions(h.waitNotices("mcu-1", 2))
	want := []transition{{"100", "up", "registered"}, {"100", "down", "missed"}}
	if !slices.Equal(got, want) {
		t.Fatalf("notices = %+v, want %+v", got, want)
	}
	if n, _ := h.node("mcu-1"); n.Confs != 2 {
		t.Fatalf("confs = %d, want 2 as beaten", n.Confs)
	}
}

func TestMissedHeartbeats(t *testing.T) {
	h := newHarness(t, fast)
	var (
		hookMu sync.Mutex
		hooked []protocol.NodeStateNtf
	)
	// In-process listeners see what the bus sees, in the same order.
	h.svc.OnNodeState(func(n protocol.NodeStateNtf) {
		hookMu.Lock()
		hooked = append(hooked, n)
		hookMu.Unlock()
	})
	hb := mcu("mcu-1", "room-1", 0, 10)
	bt := h.keepBeating(hb)
	h.waitNotices("mcu-1", 1)
	bt.halt()

	down := h.waitNotices("mcu-1", 2)[1]
	if down.State != protocol.NodeDown || !strings.HasPrefix(down.Reason, "missed ") || !strings.HasSuffix(down.Reason, " heartbeats") {
		t.Fatalf("down notice = %+v", down)
	}
	if h.nodeUp("mcu-1") {
		t.Fatal("node list still says up")
	}
	// A down node is not offered.
	if _, err := h.getRes(protocol.GetResReq{Domain: "d"}); nackCode(err) != protocol.ErrNoResources {
		t.Fatalf("GET_RES with the only node down: %v, want NO_RESOURCES", err)
	}
	h.barrier()
	if got := h.noticesFor("mcu-1"); len(got) != 2 {
		t.Fatalf("down announced more than once: %+v", transitions(got))
	}

	bt = h.keepBeating(hb)
	h.waitNotices("mcu-1", 3)
	bt.halt()
	got := transitions(h.waitNotices("mcu-1", 4))
	want := []transition{
		{"100", "up", "registered"}, {"100", "down", "missed"},
		{"100", "up", "heartbeat resumed"}, {"100", "down", "missed"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("notices = %+v, want %+v", got, want)
	}
	// The hook is called just after the notice is published.
	var mine []protocol.NodeStateNtf
	testkit.Eventually(h.t, 15*time.Second, testkit.Cond("the hook to see 4 notices", func() bool {
		hookMu.Lock()
		defer hookMu.Unlock()
		mine = mine[:0]
		for _, n := range hooked {
			if n.Node == "mcu-1" {
				mine = append(mine, n)
			}
		}
		return len(mine) >= len(want)
	}))
	if !slices.Equal(transitions(mine), want) {
		t.Fatalf("hook saw %+v, want %+v", transitions(mine), want)
	}
}

func TestUnregister(t *testing.T) {
	h := newHarness(t, fast)
	hb := mcu("mcu-1", "room-1", 0, 10)
	bt := h.keepBeating(hb)
	h.waitNotices("mcu-1", 1)

	// A late notice from a process the node replaced is ignored.
	h.unregister(reg(withPID(hb, "99")))
	if _, err := h.register(reg(mcu("sync", "room-2", 0, 1))); err != nil { // same subject: handled after it
		t.Fatal(err)
	}
	if !h.nodeUp("mcu-1") {
		t.Fatal("an unregister with a stale pid removed the node")
	}

	bt.halt()
	h.unregister(reg(hb))
	got := transitions(h.waitNotices("mcu-1", 2))
	want := []transition{{"100", "up", "registered"}, {"100", "down", "unregistered"}}
	if !slices.Equal(got, want) {
		t.Fatalf("notices = %+v, want %+v", got, want)
	}
	if _, ok := h.node("mcu-1"); ok {
		t.Fatal("unregistered node is still listed")
	}
	// The watcher must not announce it again.
	h.barrier()
	if got := h.noticesFor("mcu-1"); len(got) != 2 {
		t.Fatalf("notices after unregister = %+v", transitions(got))
	}
}

func TestRestartedNode(t *testing.T) {
	cases := []struct {
		name   string
		expire bool // the old process is found dead before the new one shows up
		byBeat bool // the new process is first heard of by a heartbeat
		want   []transition
	}{
		{name: "register", want: []transition{
			{"100", "up", "registered"}, {"100", "down", "restarted"}, {"200", "up", "restarted"}}},
		{name: "heartbeat", byBeat: true, want: []transition{
			{"100", "up", "registered"}, {"100", "down", "restarted"}, {"200", "up", "restarted"}}},
		{name: "after missed heartbeats", expire: true, want: []transition{
			{"100", "up", "registered"}, {"100", "down", "missed"}, {"200", "up", "restarted"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := slow
			if tc.expire {
				opts = fast
			}
			h := newHarness(t, opts)
			old := mcu("mcu-1", "room-1", 4, 10)
			if _, err := h.register(reg(old)); err != nil {
				t.Fatal(err)
			}
			h.beat(old)
			testkit.Eventually(h.t, 15*time.Second, testkit.Cond("confs reported", func() bool { n, _ := h.node("mcu-1"); return n.Confs == 4 }))
			if tc.expire {
				h.waitNotices("mcu-1", 2)
			}
			fresh := withPID(old, "200")
			fresh.Confs = 0
			if tc.byBeat {
				h.beat(fresh)
			} else if _, err := h.register(reg(fresh)); err != nil {
				t.Fatal(err)
			}
			got := transitions(h.waitNotices("mcu-1", len(tc.want)))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("notices = %+v, want %+v", got, tc.want)
			}
			n, _ := h.node("mcu-1")
			if n.PID != "200" || n.State != protocol.NodeUp || n.Confs != 0 {
				t.Fatalf("node = %+v, want pid 200 up with no conferences", n)
			}
		})
	}
}

func TestRestartedRMSRelearnsNodes(t *testing.T) {
	h := newHarness(t, fast)
	hb := mcu("mcu-1", "room-2", 3, 10)
	if _, err := h.register(reg(hb)); err != nil {
		t.Fatal(err)
	}
	h.keepBeating(hb)
	h.waitNotices("mcu-1", 1)

	if err := h.svc.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.svc.Ready() {
		t.Fatal("ready after Shutdown")
	}
	h.svc = h.startRMS(nil)
	testkit.Eventually(h.t, 15*time.Second, testkit.Cond("the new RMS to learn mcu-1", func() bool {
		n, ok := h.node("mcu-1")
		return ok && n.State == protocol.NodeUp && n.Confs == 3 && n.Room == "room-2"
	}))
	got := transitions(h.waitNotices("mcu-1", 2))
	want := []transition{{"100", "up", "registered"}, {"100", "up", "registered"}}
	if !slices.Equal(got, want) {
		t.Fatalf("notices = %+v, want %+v", got, want)
	}
	ack, err := h.getRes(protocol.GetResReq{Domain: "d"})
	if err != nil || len(ack.MCU) != 1 || ack.MCU[0].Node != "mcu-1" {
		t.Fatalf("GET_RES after restart: %+v, %v", ack, err)
	}
}

func TestNodeList(t *testing.T) {
	h := newHarness(t, fast)
	h.keepBeating(mcu("m-2", "room-2", 1, 10))
	h.keepBeating(kind(mcu("m-1", "room-1", 0, 5), "vrs"))
	if _, err := h.register(reg(mcu("m-0", "room-2", 0, 10))); err != nil {
		t.Fatal(err)
	}
	h.waitNotices("m-0", 2) // m-0 never beats: down
	testkit.Eventually(h.t, 15*time.Second, testkit.Cond("m-1 and m-2 up", func() bool { return h.nodeUp("m-1") && h.nodeUp("m-2") }))

	var ack protocol.NodeListAck
	if err := h.bus.Call(context.Background(), protocol.SubjectRMS(platform),
		protocol.Header{Type: protocol.RMSNodeListReq}, &ack); err != nil {
		t.Fatal(err)
	}
	type row struct{ id, room, kind, state string }
	var got []row
	for _, n := range ack.Nodes {
		got = append(got, row{n.Node, n.Room, n.Kind, n.State})
		if n.LastBeatMs == 0 || n.RegisteredAtM == 0 {
			t.Errorf("node %s has no beat or registration time: %+v", n.Node, n)
		}
	}
	want := []row{{"m-0", "room-2", "mcu", "down"}, {"m-1", "room-1", "vrs", "up"}, {"m-2", "room-2", "mcu", "up"}}
	if ack.Type != protocol.RMSNodeListAck || !slices.Equal(got, want) {
		t.Fatalf("node list = %s %+v, want %+v", ack.Type, got, want)
	}
}
