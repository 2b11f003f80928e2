package sip

import (
	"net"
	"strconv"
	"strings"
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

// A BYE ends a call only when its tags name one of the call's dialogs:
// whoever learns a Call-ID and sends a BYE with other tags, along the
// recorded route or off it, ends nothing (off the route it gets 481);
// the callee's own BYE, its tags the other way round, ends the call.
func TestByeWithForeignTagsEndsNothing(t *testing.T) {
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
	id := inv.CallID().Value()
	retag := func(p sip.HeaderParams, tag string) sip.HeaderParams {
		p = p.Clone()
		p.Add("tag", tag)
		return p
	}

	// Along the route, with a From tag of no dialog: relayed (the callee
	// answers it), the call goes on.
	forged := caller.dialogRequest(sip.BYE, inv, ok)
	forged.From().Params = retag(forged.From().Params, "not-the-caller")
	caller.send(forged, e.b.UDPAddr())
	if ev, ended := e.rec.end(t, id); ended {
		t.Fatalf("a BYE with a foreign From tag ended the call: %+v", ev)
	}
	// Along the route, the caller's From tag with a foreign To tag.
	forged = caller.dialogRequest(sip.BYE, inv, ok)
	forged.To().Params = retag(forged.To().Params, "not-the-callee")
	caller.send(forged, e.a.UDPAddr())
	if ev, ended := e.rec.end(t, id); ended {
		t.Fatalf("a BYE with a foreign To tag ended the call: %+v", ev)
	}
	// Off the route, to the node, with foreign tags: 481.
	host, port, err := net.SplitHostPort(e.b.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	off := caller.request(sip.BYE, sip.Uri{Scheme: "sip", User: "2001", Host: host, Port: p}, id)
	off.ReplaceHeader(&sip.FromHeader{Address: inv.From().Address, Params: retag(inv.From().Params, "not-the-caller")})
	off.ReplaceHeader(sip.HeaderClone(ok.To()))
	if res := caller.send(off, e.b.UDPAddr()); res.StatusCode != 481 {
		t.Fatalf("a BYE off the route with foreign tags: %d %s, want 481", res.StatusCode, res.Reason)
	}
	if ev, ended := e.rec.end(t, id); ended {
		t.Fatalf("a BYE off the route with foreign tags ended the call: %+v", ev)
	}
	_, callerByes := caller.received()

	// The callee hangs up, off the route, through B: its From carries the
	// callee's tag and its To the caller's. The call ends and the BYE
	// reaches the caller.
	bye := callee.request(sip.BYE, sip.Uri{Scheme: "sip", User: "1001", Host: host, Port: p}, id)
	bye.ReplaceHeader(&sip.FromHeader{Address: ok.To().Address, Params: ok.To().Params.Clone()})
	bye.ReplaceHeader(&sip.ToHeader{Address: inv.From().Address, Params: inv.From().Params.Clone()})
	if res := callee.send(bye, e.b.UDPAddr()); res.StatusCode != 200 {
		t.Fatalf("the callee's BYE: %d %s, want 200 from the caller", res.StatusCode, res.Reason)
	}
	if _, byes := caller.received(); byes != callerByes+1 {
		t.Fatalf("the caller got %d BYEs, want %d", byes, callerByes+1)
	}
	ev := e.rec.waitEnd(t, id)
	if !ev.Connected || ev.Reason != EndBye || ev.End.Before(ev.Answer) {
		t.Fatalf("record %+v", ev)
	}
	if !strings.Contains(e.rec.logText(id), "name no dialog of this call") {
		t.Errorf("the call's log does not say a BYE was refused:\n%s", e.rec.logText(id))
	}
	e.rec.check(t)
}
