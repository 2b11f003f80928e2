package sip

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/sip/digest"
	"github.com/convene/convene/internal/testkit"
)

// A call to a registered user rings all its contacts at once; the first
// to answer takes it and the others are cancelled. The call is recorded
// once, answered once, and ends with the BYE.
func TestCallForksToEveryContact(t *testing.T) {
	e := start(t, setup{})
	e.subscriber("1001", "pw-1001")
	e.subscriber("2001", "pw-2001")
	desk, mobile := newPhone(t, "2001", "pw-2001"), newPhone(t, "2001", "pw-2001")
	mobile.answer = func(*sip.Request) int { return 0 } // rings until cancelled
	// The desk answers once the mobile rings too: both were called at
	// once, whichever INVITE the proxy sent first.
	desk.answer = func(*sip.Request) int {
		deadline := time.Now().Add(10 * time.Second)
		for n, _ := mobile.received(); n == 0 && time.Now().Before(deadline); n, _ = mobile.received() {
			time.Sleep(5 * time.Millisecond)
		}
		return 200
	}
	for _, p := range []*phone{desk, mobile} {
		if res := p.register(e.a.UDPAddr(), digest.SHA256); res.StatusCode != 200 {
			t.Fatalf("REGISTER: %d", res.StatusCode)
		}
	}
	caller := newPhone(t, "1001", "pw-1001")
	inv, res := caller.call(e.b.UDPAddr(), "2001", sdpVideo)
	if res.StatusCode != 200 {
		t.Fatalf("call answered %d", res.StatusCode)
	}
	if n, _ := mobile.received(); n != 1 {
		t.Fatalf("the second contact got %d INVITEs, want 1", n)
	}
	if rr := res.GetHeaders("Record-Route"); len(rr) != 1 || !strings.Contains(rr[0].Value(), "cvn=sip-b") {
		t.Fatalf("record-routes %v, want sip-b's", rr)
	}
	if bye := caller.inDialog(sip.BYE, inv, res, e.b.UDPAddr()); bye.StatusCode != 200 {
		t.Fatalf("BYE answered %d", bye.StatusCode)
	}
	id := inv.CallID().Value()
	ev := e.rec.waitEnd(t, id)
	if !ev.Connected || ev.Caller != "1001" || ev.Called != "2001" || ev.Media != MediaVideo || ev.Node != "sip-b" ||
		ev.Reason != EndBye || ev.Status != 200 || ev.ToTag == "" || ev.Answer.IsZero() || ev.End.Before(ev.Answer) {
		t.Fatalf("record %+v", ev)
	}
	if _, byes := desk.received(); byes != 1 {
		t.Fatalf("the answering phone got %d BYEs", byes)
	}
	e.rec.check(t)
	if log := e.rec.logText(id); !strings.Contains(log, "forking to 2 contact(s)") || !strings.Contains(log, "INVITE sip:2001@") {
		t.Fatalf("the call's log lacks its routing and messages:\n%s", log)
	}
}

func TestCallRefusals(t *testing.T) {
	e := start(t, setup{})
	e.subscriber("1001", "pw-1001")
	e.subscriber("3001", "pw-3001") // never registers
	caller := newPhone(t, "1001", "pw-1001")
	cases := []struct {
		name, number string
		want         int
	}{
		{"unknown number", "5199999", 404},
		{"a subscriber registered nowhere", "3001", 480},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inv, res := caller.call(e.a.UDPAddr(), c.number, sdpVoice)
			if res.StatusCode != c.want {
				t.Fatalf("answered %d, want %d", res.StatusCode, c.want)
			}
			ev := e.rec.waitEnd(t, inv.CallID().Value())
			if ev.Connected || ev.Status != c.want || ev.Reason != EndUnrouted || ev.Called != c.number {
				t.Fatalf("record %+v", ev)
			}
		})
	}
	t.Run("a conference not running", func(t *testing.T) {
		// A booked number: the registry knows it, nothing runs it.
		ntf := protocol.RegistryNtf{Type: protocol.UPUConfAddNtf, Reporter: testPlatform, Entry: protocol.RegistryEntry{
			E164: "5100777", Kind: protocol.EntryReserved, Domain: "acme", Platform: testPlatform, RealPlatform: testPlatform,
			UpdatedMs: time.Now().UnixMilli()}}
		if err := e.st.Bus.Publish(protocol.SubjectRegistry(testPlatform), ntf); err != nil {
			t.Fatal(err)
		}
		testkit.AwaitWithin(t, 15*time.Second, "the booked number in the registry", func() bool { _, ok := e.st.Registry.Lookup("5100777"); return ok })
		inv, res := caller.call(e.a.UDPAddr(), "5100777", sdpVoice)
		if res.StatusCode != 480 {
			t.Fatalf("a call to a conference not running: %d, want 480", res.StatusCode)
		}
		if ev := e.rec.waitEnd(t, inv.CallID().Value()); ev.E164 != "5100777" || ev.Status != 480 {
			t.Fatalf("record %+v", ev)
		}
	})
	t.Run("the wrong From", func(t *testing.T) {
		impostor := newPhone(t, "1001", "pw-1001")
		req := impostor.request(sip.INVITE, sip.Uri{Scheme: "sip", User: "3001", Host: testDomain}, "impostor")
		req.From().Address.User = "3001"
		res := impostor.send(req, e.a.UDPAddr())
		r := impostor.again(req)
		r.AppendHeader(sip.NewHeader("Proxy-Authorization", impostor.credentials(res, r, digest.MD5, 1)))
		if got := impostor.send(r, e.a.UDPAddr()); got.StatusCode != 403 {
			t.Fatalf("a call in another user's name: %d", got.StatusCode)
		}
	})
	e.rec.check(t)
}

// Nobody answers: after the ring timeout the caller gets 408, the
// ringing phone a CANCEL, and the call is recorded as unanswered.
func TestRingTimeout(t *testing.T) {
	e := start(t, setup{tune: func(o *Options) { o.RingTimeout = 300 * time.Millisecond }})
	e.subscriber("1001", "pw-1001")
	e.subscriber("2001", "pw-2001")
	callee := newPhone(t, "2001", "pw-2001")
	callee.answer = func(*sip.Request) int { return 0 }
	callee.register(e.a.UDPAddr(), digest.MD5)
	caller := newPhone(t, "1001", "pw-1001")
	inv, res := caller.call(e.a.UDPAddr(), "2001", sdpVoice)
	if res.StatusCode != 408 {
		t.Fatalf("answered %d, want 408", res.StatusCode)
	}
	ev := e.rec.waitEnd(t, inv.CallID().Value())
	if ev.Connected || ev.Reason != EndNoAnswer || ev.Status != 408 {
		t.Fatalf("record %+v", ev)
	}
}

// Max-Forwards 0 is refused with 483; a request that comes back with the
// same loop-detection fields (a loop, not a spiral) with 482.
func TestHopsAndLoops(t *testing.T) {
	e := start(t, setup{})
	e.subscriber("1001", "pw-1001")
	p := newPhone(t, "1001", "pw-1001")

	req := p.request(sip.INVITE, sip.Uri{Scheme: "sip", User: "2001", Host: testDomain}, "hops")
	req.ReplaceHeader(func() sip.Header { v := sip.MaxForwardsHeader(0); return &v }())
	if res := p.send(req, e.a.UDPAddr()); res.StatusCode != 483 {
		t.Fatalf("Max-Forwards 0: %d, want 483", res.StatusCode)
	}

	loop := p.request(sip.INVITE, sip.Uri{Scheme: "sip", User: "2001", Host: testDomain}, "loop")
	v := e.a.via("UDP", loopHash(loop))
	loop.AppendHeader(v) // as if it went through A before, unchanged
	if res := p.send(loop, e.a.UDPAddr()); res.StatusCode != 482 {
		t.Fatalf("a loop: %d, want 482", res.StatusCode)
	}
	spiral := p.request(sip.INVITE, sip.Uri{Scheme: "sip", User: "2001", Host: testDomain}, "spiral")
	before := spiral.Clone()
	before.Recipient.User = "9999" // the Request-URI changed since: a spiral
	spiral.AppendHeader(e.a.via("UDP", loopHash(before)))
	if res := p.send(spiral, e.a.UDPAddr()); res.StatusCode != 407 {
		t.Fatalf("a spiral: %d, want 407 (handled as any request)", res.StatusCode)
	}
}

// Requests missing what SIP requires get 400; what does not parse is
// dropped; the node serves on.
func TestMalformedRequests(t *testing.T) {
	e := start(t, setup{})
	conn, err := net.Dial("udp", e.a.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	read := func() string {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		return string(buf[:n])
	}
	junk := []string{"\x00\x01garbage", "INVITE\r\n\r\n", "SIP/2.0 200 OK\r\n\r\n"}
	for _, j := range junk {
		if _, err := conn.Write([]byte(j)); err != nil {
			t.Fatal(err)
		}
	}
	noCallID := "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + local + ";branch=z9hG4bKx1\r\n" +
		"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(noCallID)); err != nil {
		t.Fatal(err)
	}
	if got := read(); !strings.HasPrefix(got, "SIP/2.0 400 ") {
		t.Fatalf("a request without Call-ID: %q", got)
	}
	ok := strings.Replace(noCallID, "CSeq:", "Call-ID: fine\r\nCSeq:", 1)
	ok = strings.Replace(ok, "branch=z9hG4bKx1", "branch=z9hG4bKx2", 1)
	if _, err := conn.Write([]byte(ok)); err != nil {
		t.Fatal(err)
	}
	if got := read(); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Fatalf("the node stopped answering after malformed requests: %q", got)
	}
}
