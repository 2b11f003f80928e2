package sip

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/convene/convene/internal/sip/digest"
)

// phone is a SIP user agent for the tests: it registers, calls, answers
// and hangs up, with digest credentials computed by this module's digest
// package, so a test chooses the algorithm and the nonce count.
type phone struct {
	t          *testing.T
	user, pass string
	ua         *sipgo.UserAgent
	c          *sipgo.Client
	conn       net.PacketConn
	laddr      sip.Addr
	contact    sip.Uri
	seq        atomic.Uint32

	mu      sync.Mutex
	invites []*sip.Request // INVITEs received
	byes    []*sip.Request // BYEs received
	// answer decides the answer to an INVITE: a status (200 default).
	answer func(req *sip.Request) int
}

const sdpVoice = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
const sdpVideo = sdpVoice + "m=video 6002 RTP/AVP 96\r\n"

func newPhone(t *testing.T, user, pass string) *phone {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := conn.LocalAddr().(*net.UDPAddr)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("phone-" + user))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(a.Port))
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{t: t, user: user, pass: pass, ua: ua, c: c, conn: conn, laddr: sip.Addr{IP: a.IP, Port: a.Port},
		contact: sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: a.Port}}
	p.seq.Store(1)
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		p.mu.Lock()
		p.invites = append(p.invites, req)
		answer := p.answer
		p.mu.Unlock()
		code := 200
		if answer != nil {
			code = answer(req)
		}
		if code == 0 {
			<-tx.Done() // ring until cancelled
			return
		}
		var res *sip.Response
		if code == 200 {
			res = sip.NewResponseFromRequest(req, 200, "OK", []byte(sdpVoice))
			res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		} else {
			res = sip.NewResponseFromRequest(req, code, "Refused", nil)
		}
		res.AppendHeader(&sip.ContactHeader{Address: p.contact})
		_ = tx.Respond(res)
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		p.mu.Lock()
		p.byes = append(p.byes, req)
		p.mu.Unlock()
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	go func() { _ = srv.ServeUDP(conn) }()
	t.Cleanup(func() { _ = conn.Close(); _ = ua.Close() })
	if err := waitServing(context.Background(), ua, conn.LocalAddr().String()); err != nil {
		t.Fatal(err)
	}
	return p
}

// request makes a request from the phone to uri.
func (p *phone) request(m sip.RequestMethod, to sip.Uri, callID string) *sip.Request {
	req := sip.NewRequest(m, to)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: p.laddr.Port, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	req.AppendHeader(via)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.user, Host: testDomain}, Params: sip.NewParams()}
	from.Params.Add("tag", "t"+callID)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: to.User, Host: to.Host}, Params: sip.NewParams()})
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: p.seq.Add(1), MethodName: m})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(&sip.ContactHeader{Address: p.contact})
	req.SetBody(nil)
	return req
}

// send sends a request to a node (host:port) and returns its final
// answer.
func (p *phone) send(req *sip.Request, node string) *sip.Response {
	p.t.Helper()
	res, err := p.trySend(req, node)
	if err != nil {
		p.t.Fatalf("%s to %s: %v", req.Method, node, err)
	}
	return res
}

func (p *phone) trySend(req *sip.Request, node string) (*sip.Response, error) {
	req.SetDestination(node)
	req.Laddr = p.laddr
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return p.c.Do(ctx, req, func(*sipgo.Client, *sip.Request) error { return nil })
}

// again is req for another transaction: a new branch and CSeq.
func (p *phone) again(req *sip.Request) *sip.Request {
	r := req.Clone()
	r.Via().Params.Add("branch", sip.GenerateBranch())
	r.CSeq().SeqNo = p.seq.Add(1)
	return r
}

// credentials answers a challenge (the first of a with algorithm a) for
// req with nonce count nc.
func (p *phone) credentials(res *sip.Response, req *sip.Request, a digest.Algorithm, nc uint32) string {
	p.t.Helper()
	name := "WWW-Authenticate"
	if res.StatusCode == 407 {
		name = "Proxy-Authenticate"
	}
	for _, h := range res.GetHeaders(name) {
		v := h.Value()
		if !strings.Contains(v, "algorithm="+string(a)+",") {
			continue
		}
		c, err := digest.ParseCredentials(strings.Replace(v, `qop="auth"`, `username="x", response="x"`, 1))
		if err != nil {
			p.t.Fatal(err)
		}
		return p.answerNonce(c.Realm, c.Nonce, req, a, nc)
	}
	p.t.Fatalf("no %s challenge in %s", a, res.String())
	return ""
}

// answerNonce computes credentials for req on a given nonce.
func (p *phone) answerNonce(realm, nonce string, req *sip.Request, a digest.Algorithm, nc uint32) string {
	ncs := fmt.Sprintf("%08x", nc)
	uri := req.Recipient.String()
	ha1 := digest.HA1(a, p.user, realm, p.pass)
	resp := digest.Response(a, ha1, nonce, ncs, "c0ffee", "auth", string(req.Method), uri)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=%s, cnonce="c0ffee"`,
		p.user, realm, nonce, uri, resp, a, ncs)
}

// authed sends req; challenged, it sends it again with credentials of
// algorithm a, and returns the final answer.
func (p *phone) authed(req *sip.Request, node string, a digest.Algorithm) *sip.Response {
	p.t.Helper()
	res := p.send(req, node)
	if res.StatusCode != 401 && res.StatusCode != 407 {
		return res
	}
	r := p.again(req)
	hdr := "Authorization"
	if res.StatusCode == 407 {
		hdr = "Proxy-Authorization"
	}
	r.AppendHeader(sip.NewHeader(hdr, p.credentials(res, r, a, 1)))
	return p.send(r, node)
}

// register registers the phone's contact through node.
func (p *phone) register(node string, a digest.Algorithm) *sip.Response {
	p.t.Helper()
	req := p.request(sip.REGISTER, sip.Uri{Scheme: "sip", User: p.user, Host: testDomain}, "reg-"+p.user+"-"+sip.GenerateTagN(6))
	req.Recipient.User = ""
	req.AppendHeader(sip.NewHeader("Expires", "300"))
	return p.authed(req, node, a)
}

// call calls number through node, and ACKs a 2xx; it returns the INVITE
// sent and its final answer.
func (p *phone) call(node, number, sdp string) (*sip.Request, *sip.Response) {
	p.t.Helper()
	req := p.request(sip.INVITE, sip.Uri{Scheme: "sip", User: number, Host: testDomain}, "call-"+sip.GenerateTagN(10))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte(sdp))
	res := p.send(req, node)
	if res.StatusCode == 407 {
		r := p.again(req)
		r.AppendHeader(sip.NewHeader("Proxy-Authorization", p.credentials(res, r, digest.SHA256, 1)))
		req, res = r, p.send(r, node)
	}
	if res.IsSuccess() {
		p.inDialog(sip.ACK, req, res, node)
	}
	return req, res
}

// inDialog sends a request of the dialog an INVITE and its 2xx made
// through node (the route set from the 2xx's Record-Route) and returns
// its answer (nil for an ACK).
func (p *phone) inDialog(m sip.RequestMethod, inv *sip.Request, ok *sip.Response, node string) *sip.Response {
	p.t.Helper()
	r := p.dialogRequest(m, inv, ok)
	if m == sip.ACK {
		r.SetDestination(node)
		r.Laddr = p.laddr
		if err := p.c.WriteRequest(r, func(*sipgo.Client, *sip.Request) error { return nil }); err != nil {
			p.t.Fatal(err)
		}
		return nil
	}
	return p.send(r, node)
}

// dialogRequest makes a request of the caller's dialog of an answered
// INVITE, along its route set.
func (p *phone) dialogRequest(m sip.RequestMethod, inv *sip.Request, ok *sip.Response) *sip.Request {
	target := inv.Recipient
	if c := ok.Contact(); c != nil {
		target = c.Address
	}
	r := sip.NewRequest(m, target)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: p.laddr.Port, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	r.AppendHeader(via)
	rr := ok.GetHeaders("Record-Route")
	for i := len(rr) - 1; i >= 0; i-- {
		h := rr[i].(*sip.RecordRouteHeader)
		r.AppendHeader(&sip.RouteHeader{Address: h.Address})
	}
	mf := sip.MaxForwardsHeader(70)
	r.AppendHeader(&mf)
	r.AppendHeader(sip.HeaderClone(inv.From()))
	r.AppendHeader(sip.HeaderClone(ok.To()))
	r.AppendHeader(sip.HeaderClone(inv.CallID()))
	seq := inv.CSeq().SeqNo
	if m != sip.ACK {
		seq = p.seq.Add(1)
	}
	r.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: m})
	r.SetBody(nil)
	return r
}

func (p *phone) received() (invites, byes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.invites), len(p.byes)
}
