package medianode

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// request sends v to the node and returns the reply's type and, for a
// NACK, its code.
func (h *harness) request(node string, v any) (typ, code string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := h.sched.Request(ctx, protocol.SubjectToNode(node), v)
	if err != nil {
		h.t.Fatalf("request to %s: %v", node, err)
	}
	var nack protocol.Nack
	if err := m.Decode(&nack); err != nil {
		h.t.Fatal(err)
	}
	return m.Type, nack.ErrCode
}

func TestHostConference(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n, _ := h.node(Options{IP: "10.0.0.5"})
	conf := protocol.Conference{
		E164: "1001", Name: "Board", Password: "pw", EndTime: 1_700_000_000_000, DurationMinutes: 60,
		Domain: "dom-1", Platform: "plat-a", Scale: 32, Resolution: "1080p", Invited: []string{"t1"},
	}

	var ack protocol.NodeConfAck
	if err := h.call("sim-1", protocol.NodeConfReq{Type: protocol.MAUMCUCreateConfReq, Conf: conf}, &ack); err != nil {
		t.Fatal(err)
	}
	want := protocol.NodeConfAck{Type: protocol.MCUCreateConfAck, E164: "1001", IP: "10.0.0.5", PID: n.PID()}
	if ack != want {
		t.Fatalf("ack = %+v, want %+v", ack, want)
	}
	hosted := n.Conferences()
	if len(hosted) != 1 {
		t.Fatalf("hosted = %+v", hosted)
	}
	first := hosted[0]
	if first.E164 != "1001" || first.Name != "Board" || first.Password != "pw" || first.EndTime != conf.EndTime || first.DurationMinutes != 60 || first.CreateTime == 0 {
		t.Fatalf("hosted = %+v", first)
	}

	t.Run("retried create is ACKed and changes nothing", func(t *testing.T) {
		retry := conf
		retry.Name = "Other"
		if typ, _ := h.request("sim-1", protocol.NodeConfReq{Type: protocol.MAUMCUCreateConfReq, Conf: retry}); typ != protocol.MCUCreateConfAck {
			t.Fatalf("reply = %s", typ)
		}
		if got := n.Conferences(); len(got) != 1 || got[0].CreateTime != first.CreateTime || got[0].Name != "Board" {
			t.Fatalf("after retry: %+v, want %+v", got, first)
		}
	})
	t.Run("restore", func(t *testing.T) {
		var ack protocol.NodeConfAck
		if err := h.call("sim-1", protocol.NodeConfReq{Type: protocol.MAUMCURestoreConfReq, Conf: protocol.Conference{E164: "1002"}}, &ack); err != nil {
			t.Fatal(err)
		}
		if ack.Type != protocol.MCURestoreConfAck || ack.E164 != "1002" || !n.Hosts("1002") {
			t.Fatalf("restore ack = %+v, hosted %v", ack, n.Hosts("1002"))
		}
	})
	t.Run("no e164", func(t *testing.T) {
		typ, code := h.request("sim-1", protocol.NodeConfReq{Type: protocol.MAUMCUCreateConfReq})
		if typ != protocol.MCUCreateConfNack || code != protocol.ErrBadRequest {
			t.Fatalf("reply = %s %s, want %s %s", typ, code, protocol.MCUCreateConfNack, protocol.ErrBadRequest)
		}
	})
	t.Run("received log", func(t *testing.T) {
		var got []string
		for _, r := range n.Received() {
			got = append(got, r.Type+" "+r.E164)
		}
		want := []string{
			protocol.MAUMCUCreateConfReq + " 1001",
			protocol.MAUMCUCreateConfReq + " 1001",
			protocol.MAUMCURestoreConfReq + " 1002",
			protocol.MAUMCUCreateConfReq + " ",
		}
		if !slices.Equal(got, want) {
			t.Fatalf("received = %q, want %q", got, want)
		}
	})
}

func TestNodeFull(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.node(Options{Capacity: 2})
	h.create("sim-1", "1001")
	h.create("sim-1", "1002")
	cases := []struct {
		name     string
		req      protocol.NodeConfReq
		wantType string
		wantCode string
	}{
		{"create over capacity", protocol.NodeConfReq{Type: protocol.MAUMCUCreateConfReq, Conf: protocol.Conference{E164: "1003"}}, protocol.MCUCreateConfNack, CodeNodeFull},
		{"restore over capacity", protocol.NodeConfReq{Type: protocol.MAUMCURestoreConfReq, Conf: protocol.Conference{E164: "1003"}}, protocol.MCURestoreConfNack, CodeNodeFull},
		{"retry of a hosted conference", protocol.NodeConfReq{Type: protocol.MAUMCUCreateConfReq, Conf: protocol.Conference{E164: "1001"}}, protocol.MCUCreateConfAck, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			typ, code := h.request("sim-1", tc.req)
			if typ != tc.wantType || code != tc.wantCode {
				t.Fatalf("reply = %s %q, want %s %q", typ, code, tc.wantType, tc.wantCode)
			}
		})
	}
	var nack *bus.NackError
	err := h.call("sim-1", protocol.NodeConfReq{Type: protocol.MAUMCUCreateConfReq, Conf: protocol.Conference{E164: "1003"}}, nil)
	if !errors.As(err, &nack) || nack.Code != CodeNodeFull {
		t.Fatalf("create when full = %v, want %s", err, CodeNodeFull)
	}
	if typ, _ := h.request("sim-1", protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: "1001"}); typ != protocol.MCUReleaseConfAck {
		t.Fatalf("release reply = %s", typ)
	}
	h.create("sim-1", "1003")
}

func TestRelease(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	notices := h.listen(protocol.SubjectFromNodes(h.platform))
	n, _ := h.node(Options{ConfListInterval: time.Hour})
	h.create("sim-1", "1001")
	h.create("sim-1", "1002")

	released := func() []protocol.NodeReleaseNtf {
		var out []protocol.NodeReleaseNtf
		for _, m := range notices.of(protocol.MCUReleaseConfNtf) {
			var ntf protocol.NodeReleaseNtf
			if err := m.Decode(&ntf); err != nil {
				t.Fatal(err)
			}
			out = append(out, ntf)
		}
		return out
	}

	// Not hosted: ACKed all the same, and no notice.
	if typ, _ := h.request("sim-1", protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: "1009"}); typ != protocol.MCUReleaseConfAck {
		t.Fatalf("release of an unknown conference: reply %s", typ)
	}
	// Hosted, asked with a reply subject.
	if typ, _ := h.request("sim-1", protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: "1001"}); typ != protocol.MCUReleaseConfAck {
		t.Fatalf("release: reply %s", typ)
	}
	// Hosted, sent as a plain command.
	if err := h.sched.Publish(protocol.SubjectToNode("sim-1"), protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: "1002"}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("two release notices", func() bool { return len(released()) == 2 }))
	got := released()
	slices.SortFunc(got, func(a, b protocol.NodeReleaseNtf) int { return strings.Compare(a.E164, b.E164) })
	for i, e := range []string{"1001", "1002"} {
		want := protocol.NodeReleaseNtf{Type: protocol.MCUReleaseConfNtf, E164: e, Node: "sim-1", IP: defaultIP, PID: n.PID(), Reason: ReasonReleased}
		if got[i] != want {
			t.Fatalf("notice %d = %+v, want %+v", i, got[i], want)
		}
	}
	if len(n.Conferences()) != 0 {
		t.Fatalf("still hosting %+v", n.Conferences())
	}
}

func TestConferenceChanges(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	notices := h.listen(protocol.SubjectFromNodes(h.platform))
	n, _ := h.node(Options{})
	hosted := func(e164 string) Hosted {
		for _, c := range n.Conferences() {
			if c.E164 == e164 {
				return c
			}
		}
		return Hosted{}
	}
	stateChange := func(e164 string) *protocol.ConfStateChangeNtf {
		for _, m := range notices.of(protocol.MCUConfStateChangeNtf) {
			var ntf protocol.ConfStateChangeNtf
			if err := m.Decode(&ntf); err != nil {
				t.Fatal(err)
			}
			if ntf.E164 == e164 {
				return &ntf
			}
		}
		return nil
	}

	cases := []struct {
		name     string
		host     bool
		msg      func(e164 string) any
		notice   bool   // sent without a reply subject
		wantType string // reply type
		wantCode string // reply errcode
		done     func(e164 string) bool
	}{
		{
			name: "duration", host: true, notice: true,
			msg: func(e string) any {
				return protocol.ConfDurationNtf{Type: protocol.MAUMCUConfDurationNtf, E164: e, DurationMinutes: 90, EndTime: 42}
			},
			done: func(e string) bool { c := hosted(e); return c.EndTime == 42 && c.DurationMinutes == 90 },
		},
		{
			name: "will end", host: true, notice: true,
			msg: func(e string) any {
				return protocol.ConfWillEndNtf{Type: protocol.MAUMCUConfWillEndNtf, E164: e, Seconds: 300}
			},
			done: func(e string) bool { return hosted(e).WillEndNotified },
		},
		{
			name: "rename", host: true, wantType: protocol.MCUModifyConfNameAck,
			msg: func(e string) any {
				return protocol.ModifyConfNameReq{Type: protocol.MAUMCUModifyConfNameReq, E164: e, Name: "Renamed"}
			},
			done: func(e string) bool {
				ntf := stateChange(e)
				return hosted(e).Name == "Renamed" && ntf != nil && ntf.Name != nil && *ntf.Name == "Renamed" && ntf.Password == nil && ntf.Node == "sim-1"
			},
		},
		{
			name: "rename not hosted", wantType: protocol.MCUModifyConfNameNack, wantCode: protocol.ErrConfNotFound,
			msg: func(e string) any {
				return protocol.ModifyConfNameReq{Type: protocol.MAUMCUModifyConfNameReq, E164: e, Name: "x"}
			},
		},
		{
			name: "password", host: true, wantType: protocol.MCUModifyPasswordAck,
			msg: func(e string) any {
				return protocol.ModifyPasswordReq{Type: protocol.MAUMCUModifyPasswordReq, E164: e, Password: "s3cret"}
			},
			done: func(e string) bool {
				ntf := stateChange(e)
				return hosted(e).Password == "s3cret" && ntf != nil && ntf.Password != nil && *ntf.Password == "s3cret" && ntf.Name == nil
			},
		},
		{
			name: "password not hosted", wantType: protocol.MCUModifyPasswordNack, wantCode: protocol.ErrConfNotFound,
			msg: func(e string) any {
				return protocol.ModifyPasswordReq{Type: protocol.MAUMCUModifyPasswordReq, E164: e, Password: "x"}
			},
		},
		{
			name: "start monitor", host: true, wantType: protocol.MCUStartMonitorAck,
			msg: func(e string) any {
				return protocol.MonitorReq{Type: protocol.MAUMCUStartMonitorReq, E164: e, IP: "10.1.1.1", Port: 5000}
			},
			done: func(e string) bool { return slices.Equal(hosted(e).Monitors, []string{"10.1.1.1:5000"}) },
		},
		{
			name: "start monitor not hosted", wantType: protocol.MCUStartMonitorNack, wantCode: protocol.ErrConfNotFound,
			msg: func(e string) any {
				return protocol.MonitorReq{Type: protocol.MAUMCUStartMonitorReq, E164: e, IP: "10.1.1.1", Port: 5000}
			},
		},
		{
			name: "start monitor without a port", host: true, wantType: protocol.MCUStartMonitorNack, wantCode: protocol.ErrBadRequest,
			msg: func(e string) any {
				return protocol.MonitorReq{Type: protocol.MAUMCUStartMonitorReq, E164: e, IP: "10.1.1.1"}
			},
		},
		{
			name: "unknown type", wantType: protocol.ErrorReplyType, wantCode: protocol.ErrBadRequest,
			msg: func(e string) any { return protocol.ConfReq{Type: "MAU_MCU_BOGUS_REQ", E164: e} },
			done: func(string) bool {
				return slices.ContainsFunc(n.Received(), func(r Received) bool { return r.Type == "MAU_MCU_BOGUS_REQ" })
			},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e164(i)
			if tc.host {
				h.create("sim-1", e)
			}
			if tc.notice {
				if err := h.sched.Publish(protocol.SubjectToNode("sim-1"), tc.msg(e)); err != nil {
					t.Fatal(err)
				}
			} else if typ, code := h.request("sim-1", tc.msg(e)); typ != tc.wantType || code != tc.wantCode {
				t.Fatalf("reply = %s %q, want %s %q", typ, code, tc.wantType, tc.wantCode)
			}
			if tc.done != nil {
				testkit.Eventually(t, testkit.Wait, testkit.Cond(tc.name+" applied", func() bool { return tc.done(e) }))
			}
		})
	}

	t.Run("stop monitor", func(t *testing.T) {
		e := "2001"
		h.create("sim-1", e)
		start := protocol.MonitorReq{Type: protocol.MAUMCUStartMonitorReq, E164: e, IP: "10.1.1.1", Port: 5000}
		h.request("sim-1", start)
		start.Port = 5002
		h.request("sim-1", start)
		stop := protocol.MonitorReq{Type: protocol.MAUMCUStopMonitorCmd, E164: e, IP: "10.1.1.1", Port: 5000}
		if typ, _ := h.request("sim-1", stop); typ != protocol.GenericAckType {
			t.Fatalf("stop reply = %s", typ)
		}
		if got := hosted(e).Monitors; !slices.Equal(got, []string{"10.1.1.1:5002"}) {
			t.Fatalf("monitors = %q, want only 10.1.1.1:5002", got)
		}
	})
}
