package medianode

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

func TestFaultNack(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n, _ := h.node(Options{})
	h.create("sim-1", "1000")
	create := func(e string) any {
		return protocol.NodeConfReq{Type: protocol.MAUMCUCreateConfReq, Conf: protocol.Conference{E164: e}}
	}
	restore := func(e string) any {
		return protocol.NodeConfReq{Type: protocol.MAUMCURestoreConfReq, Conf: protocol.Conference{E164: e}}
	}
	rename := func(string) any {
		return protocol.ModifyConfNameReq{Type: protocol.MAUMCUModifyConfNameReq, E164: "1000", Name: "new"}
	}
	release := func(string) any {
		return protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: "1000"}
	}
	cases := []struct {
		name     string
		fault    Fault
		msg      func(e164 string) any
		wantType string
		wantCode string
		hosted   bool // whether the conference it is about is hosted afterwards
	}{
		{"create refused", Fault{Nack: "NO_MEDIA"}, create, protocol.MCUCreateConfNack, "NO_MEDIA", false},
		{"restore refused", Fault{Nack: "NO_MEDIA"}, restore, protocol.MCURestoreConfNack, "NO_MEDIA", false},
		{"rename out of scope", Fault{Nack: "NO_MEDIA"}, rename, protocol.MCUModifyConfNameAck, "", true},
		{"only rename: create goes through", Fault{Nack: "NO_MEDIA", Only: []string{protocol.MAUMCUModifyConfNameReq}}, create, protocol.MCUCreateConfAck, "", true},
		{"only rename: rename refused", Fault{Nack: "NO_MEDIA", Only: []string{protocol.MAUMCUModifyConfNameReq}}, rename, protocol.MCUModifyConfNameNack, "NO_MEDIA", true},
		{"only release: refused with ERROR", Fault{Nack: "BUSY", Only: []string{protocol.MAUMCUReleaseConfCmd}}, release, protocol.ErrorReplyType, "BUSY", true},
		{"healed", Fault{}, create, protocol.MCUCreateConfAck, "", true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n.SetFault(tc.fault)
			e := e164(i)
			typ, code := h.request("sim-1", tc.msg(e))
			if typ != tc.wantType || code != tc.wantCode {
				t.Fatalf("reply = %s %q, want %s %q", typ, code, tc.wantType, tc.wantCode)
			}
			// A create or restore is about its own number; the others
			// about 1000.
			target := "1000"
			if _, ok := tc.msg(e).(protocol.NodeConfReq); ok {
				target = e
			}
			if got := n.Hosts(target); got != tc.hosted {
				t.Fatalf("%s hosted = %v, want %v", target, got, tc.hosted)
			}
		})
	}
}

func TestSetFaultCopiesOnly(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n, _ := h.node(Options{})
	only := []string{protocol.MAUMCUModifyPasswordReq}
	n.SetFault(Fault{Nack: "X", Only: only})
	only[0] = protocol.MAUMCUCreateConfReq
	if got := n.Fault().Only; !slices.Equal(got, []string{protocol.MAUMCUModifyPasswordReq}) {
		t.Fatalf("fault's Only = %q: changed through the caller's slice", got)
	}
	h.create("sim-1", "1001")
}

func TestFaultSilent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rms := h.rms(0, protocol.RegisterAck{})
	n, _ := h.node(Options{})
	n.SetFault(Fault{Silent: true})

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := h.sched.Call(ctx, protocol.SubjectToNode("sim-1"), protocol.NodeConfReq{Type: protocol.MAUMCUCreateConfReq, Conf: protocol.Conference{E164: "1001"}}, nil)
	if !errors.Is(err, bus.ErrTimeout) {
		t.Fatalf("create on a silent node = %v, want a timeout", err)
	}
	if n.Hosts("1001") {
		t.Fatal("a silent node applied the create")
	}
	if !slices.ContainsFunc(n.Received(), func(r Received) bool { return r.Type == protocol.MAUMCUCreateConfReq && r.E164 == "1001" }) {
		t.Fatalf("silent node did not log the create: %+v", n.Received())
	}
	// Out of scope, and heartbeats go on.
	if typ, _ := h.request("sim-1", protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: "1001"}); typ != protocol.MCUReleaseConfAck {
		t.Fatalf("release on a node silent to creates: %s", typ)
	}
	beats := rms.beatCount()
	testkit.Eventually(t, testkit.Wait, testkit.Cond("heartbeats of a silent node", func() bool { return rms.beatCount() >= beats+2 }))
}

func TestFaultAckDelay(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n, _ := h.node(Options{})
	n.SetFault(Fault{AckDelay: time.Second})

	type result struct {
		ack protocol.NodeConfAck
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.err = h.sched.Call(ctx, protocol.SubjectToNode("sim-1"), protocol.NodeConfReq{Type: protocol.MAUMCUCreateConfReq, Conf: protocol.Conference{E164: "1001"}}, &r.ack)
		done <- r
	}()

	// The node applies the create at once and holds the reply back.
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the create applied", func() bool { return n.Hosts("1001") }))
	select {
	case r := <-done:
		t.Fatalf("reply came before the delay: %+v", r)
	default:
	}
	// Other requests are not held.
	if typ, _ := h.request("sim-1", protocol.ModifyPasswordReq{Type: protocol.MAUMCUModifyPasswordReq, E164: "1001", Password: "x"}); typ != protocol.MCUModifyPasswordAck {
		t.Fatalf("password reply = %s", typ)
	}
	select {
	case r := <-done:
		if r.err != nil || r.ack.Type != protocol.MCUCreateConfAck {
			t.Fatalf("delayed reply = %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the delayed reply never came")
	}
}

func TestDelayedReplyDroppedByKill(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n, _ := h.node(Options{})
	n.SetFault(Fault{AckDelay: 100 * time.Millisecond})
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		errc <- h.sched.Call(ctx, protocol.SubjectToNode("sim-1"), protocol.NodeConfReq{Type: protocol.MAUMCUCreateConfReq, Conf: protocol.Conference{E164: "1001"}}, nil)
	}()
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the create applied", func() bool { return n.Hosts("1001") }))
	n.Kill()
	if err := <-errc; !errors.Is(err, bus.ErrTimeout) {
		t.Fatalf("create on a node killed before its delayed reply = %v, want a timeout", err)
	}
}

func TestFaultNoHeartbeat(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rms := h.rms(0, protocol.RegisterAck{})
	lists := h.listen(protocol.SubjectFromNodes(h.platform))
	n, nb := h.node(Options{})
	testkit.Eventually(t, testkit.Wait, testkit.Cond("heartbeats", func() bool { return rms.beatCount() >= 2 }))

	n.SetFault(Fault{NoHeartbeat: true})
	settled := h.settle(rms, nb)
	listed := len(lists.of(protocol.MCUConfListNtf))
	quiet(200 * time.Millisecond) // twenty heartbeat intervals
	// One beat may have been on its way when the fault was set.
	if got := rms.beatCount(); got > settled+1 {
		t.Fatalf("heartbeats went on: %d after the fault, %d before", got, settled)
	}
	// It still answers and reports.
	h.create("sim-1", "1001")
	testkit.Eventually(t, testkit.Wait, testkit.Cond("conference lists of a node without heartbeats", func() bool { return len(lists.of(protocol.MCUConfListNtf)) > listed }))

	n.SetFault(Fault{})
	beats := rms.beatCount()
	testkit.Eventually(t, testkit.Wait, testkit.Cond("heartbeats after healing", func() bool { return rms.beatCount() >= beats+2 }))
}
