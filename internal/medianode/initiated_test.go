package medianode

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

func TestRequestRename(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	notices := h.listen(protocol.SubjectFromNodes(h.platform))
	n, _ := h.node(Options{IP: "10.0.0.3"})
	h.create("sim-1", "1001")
	name := func() string { return n.Conferences()[0].Name }

	id, err := n.RequestRename("1001", "Renamed by chair")
	if err != nil {
		t.Fatal(err)
	}
	var req protocol.ModifyConfNameReq
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the rename request", func() bool { return notices.last(t, protocol.MCUCMModifyConfNameReq, &req) }))
	want := protocol.ModifyConfNameReq{Type: protocol.MCUCMModifyConfNameReq, E164: "1001", Name: "Renamed by chair", IP: "10.0.0.3", PID: n.PID(), MtReqID: id}
	if req != want || id == "" {
		t.Fatalf("request = %+v, want %+v", req, want)
	}
	if name() != "conf 1001" {
		t.Fatalf("name changed before the CM answered: %q", name())
	}

	// The CM refuses: the old name stays.
	nack := req
	nack.Type, nack.ErrCode = protocol.CMMCUModifyConfNameNak, protocol.ErrRenameRejected
	if err := h.sched.Publish(protocol.SubjectToNode("sim-1"), nack); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the NACK received", func() bool {
		return slices.ContainsFunc(n.Received(), func(r Received) bool { return r.Type == protocol.CMMCUModifyConfNameNak })
	}))
	h.create("sim-1", "1002") // a round trip after the NACK was handled
	if name() != "conf 1001" {
		t.Fatalf("name after a NACK = %q", name())
	}

	// The CM accepts: the name applies and is reported.
	ack := req
	ack.Type = protocol.CMMCUModifyConfNameAck
	if err := h.sched.Publish(protocol.SubjectToNode("sim-1"), ack); err != nil {
		t.Fatal(err)
	}
	var ntf protocol.ConfStateChangeNtf
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the state change", func() bool { return notices.last(t, protocol.MCUConfStateChangeNtf, &ntf) }))
	if ntf.E164 != "1001" || ntf.Name == nil || *ntf.Name != "Renamed by chair" || name() != "Renamed by chair" {
		t.Fatalf("state change %+v, name %q", ntf, name())
	}

	if _, err := n.RequestRename("1009", "x"); !errors.Is(err, ErrNotHosted) {
		t.Fatalf("rename of a conference not hosted = %v, want ErrNotHosted", err)
	}
}

func TestRequestDelay(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	sched := h.listen(protocol.SubjectFromNodes(h.platform))
	sched.setResponder(func(m *bus.Msg) {
		if m.Type != protocol.MCUDelayConfReq {
			return
		}
		var req protocol.DelayConfReq
		_ = m.Decode(&req)
		if req.Minutes > 120 {
			_ = m.Nack(protocol.MAUMCUDelayConfNack, protocol.ErrLicenseExhausted, "too long")
			return
		}
		_ = m.Respond(protocol.ConfDurationNtf{Type: protocol.MAUMCUDelayConfAck, E164: req.E164, DurationMinutes: 60 + req.Minutes, EndTime: 1000 * int64(req.Minutes)})
	})
	n, _ := h.node(Options{})
	h.create("sim-1", "1001")
	ctx := context.Background()

	got, err := n.RequestDelay(ctx, "1001", 30)
	if err != nil {
		t.Fatal(err)
	}
	if got.E164 != "1001" || got.DurationMinutes != 90 || got.EndTime != 30_000 {
		t.Fatalf("delay ack = %+v", got)
	}
	if c := n.Conferences()[0]; c.EndTime != 30_000 || c.DurationMinutes != 90 {
		t.Fatalf("recorded %+v, want end 30000 and 90 minutes", c)
	}
	var req protocol.DelayConfReq
	sched.last(t, protocol.MCUDelayConfReq, &req)
	if req != (protocol.DelayConfReq{Type: protocol.MCUDelayConfReq, E164: "1001", Minutes: 30}) {
		t.Fatalf("request = %+v", req)
	}

	var nack *bus.NackError
	if _, err := n.RequestDelay(ctx, "1001", 500); !errors.As(err, &nack) || nack.Code != protocol.ErrLicenseExhausted {
		t.Fatalf("refused delay = %v, want a NACK %s", err, protocol.ErrLicenseExhausted)
	}
	if c := n.Conferences()[0]; c.EndTime != 30_000 {
		t.Fatalf("a refused delay changed the end time to %d", c.EndTime)
	}
	if _, err := n.RequestDelay(ctx, "1009", 10); !errors.Is(err, ErrNotHosted) {
		t.Fatalf("delay of a conference not hosted = %v, want ErrNotHosted", err)
	}
}

func TestEndAndInject(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	notices := h.listen(protocol.SubjectFromNodes(h.platform))
	n, _ := h.node(Options{})

	n.Inject("1001", 0)
	if !n.Hosts("1001") || n.Conferences()[0].CreateTime == 0 {
		t.Fatalf("injected conference: %+v", n.Conferences())
	}
	if err := n.End("1001"); err != nil {
		t.Fatal(err)
	}
	var ntf protocol.NodeReleaseNtf
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the release notice", func() bool { return notices.last(t, protocol.MCUReleaseConfNtf, &ntf) }))
	want := protocol.NodeReleaseNtf{Type: protocol.MCUReleaseConfNtf, E164: "1001", Node: "sim-1", IP: defaultIP, PID: n.PID(), Reason: ReasonEndedOnNode}
	if ntf != want || n.Hosts("1001") {
		t.Fatalf("notice = %+v, want %+v; still hosted %v", ntf, want, n.Hosts("1001"))
	}
	if err := n.End("1001"); !errors.Is(err, ErrNotHosted) {
		t.Fatalf("second End = %v, want ErrNotHosted", err)
	}
}
