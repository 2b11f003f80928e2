package sip

import (
	"net"
	"strconv"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/convene/convene/internal/sip/digest"
)

// A caller that lost its route set sends its BYE to the address it
// called, with no Route (sipp does so when it abandons a call): whichever
// node of the platform gets it ends the call and passes the BYE to the
// callee; a second one finds no call (481), and a BYE off the route for a
// call the platform never had is still refused.
func TestByeOffTheRecordedRoute(t *testing.T) {
	e := start(t, setup{})
	e.subscriber("1001", "pw-1001")
	e.subscriber("2001", "pw-2001")
	callee := newPhone(t, "2001", "pw-2001")
	if res := callee.register(e.a.UDPAddr(), digest.SHA256); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	caller := newPhone(t, "1001", "pw-1001")
	inv, ok := caller.call(e.a.UDPAddr(), "2001", sdpVoice)
	if ok.StatusCode != 200 {
		t.Fatalf("call answered %d", ok.StatusCode)
	}
	// sipp's own BYE: to the node called, with the dialog's tags and no
	// Route.
	bye := func(node string) *sip.Request {
		host, port, err := net.SplitHostPort(node)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		r := caller.request(sip.BYE, sip.Uri{Scheme: "sip", User: "2001", Host: host, Port: p}, inv.CallID().Value())
		r.ReplaceHeader(sip.HeaderClone(inv.From()))
		r.ReplaceHeader(sip.HeaderClone(ok.To()))
		return r
	}
	if res := caller.send(bye(e.b.UDPAddr()), e.b.UDPAddr()); res.StatusCode != 200 {
		t.Fatalf("a BYE without the route through B: %d %s, want 200 from the callee", res.StatusCode, res.Reason)
	}
	if _, byes := callee.received(); byes != 1 {
		t.Fatalf("the callee got %d BYEs, want 1", byes)
	}
	ev := e.rec.waitEnd(t, inv.CallID().Value())
	if !ev.Connected || ev.Reason != EndBye || ev.End.Before(ev.Answer) {
		t.Fatalf("record %+v", ev)
	}
	if res := caller.send(bye(e.b.UDPAddr()), e.b.UDPAddr()); res.StatusCode != 481 {
		t.Fatalf("a BYE of a call already over: %d, want 481", res.StatusCode)
	}
	stranger := bye(e.b.UDPAddr())
	stranger.Recipient = sip.Uri{Scheme: "sip", User: "2001", Host: "192.0.2.1", Port: 5060}
	if res := caller.send(stranger, e.b.UDPAddr()); res.StatusCode != 403 {
		t.Fatalf("a BYE for elsewhere without a route of ours: %d, want 403", res.StatusCode)
	}
	e.rec.check(t)
}
