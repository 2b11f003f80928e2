package medianode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// A node with Options.SIPListen answers SIP calls to the conferences it
// hosts, as a media node's SIP stack would: a small user agent server on
// UDP whose contact the node announces when it registers with RMS (and in
// every beat), so that the SIP edge routes a conference's calls to the
// node running it now. An INVITE to a conference the node hosts (the
// Request-URI's user is the e164) is answered 200 with an SDP answer that
// mirrors the offer's media; one to any other number 404. ACK, BYE,
// CANCEL and OPTIONS are handled; media itself is out of scope.

// SIPCall is one call the node was offered.
type SIPCall struct {
	CallID string
	E164   string
	From   string
	// Status is the node's final answer to the INVITE.
	Status int
	// Ended: a BYE ended it (or a CANCEL before the answer).
	Ended bool
}

// maxSIPCalls bounds the calls a node remembers.
const maxSIPCalls = 10000

type sipUAS struct {
	n       *Node
	ua      *sipgo.UserAgent
	conn    net.PacketConn
	contact sip.Uri
	log     *slog.Logger

	mu    sync.Mutex
	calls []*SIPCall
	byID  map[string]*SIPCall
}

// SIPContact is the node's SIP contact while it runs with a SIP listener
// ("" otherwise).
func (n *Node) SIPContact() string {
	if u := n.sip.Load(); u != nil {
		return u.contact.String()
	}
	return ""
}

// SIPCalls lists the calls the node was offered since it started, oldest
// first.
func (n *Node) SIPCalls() []SIPCall {
	u := n.sip.Load()
	if u == nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]SIPCall, len(u.calls))
	for i, c := range u.calls {
		out[i] = *c
	}
	return out
}

// startSIP starts the node's user agent server when it has a SIP listener.
func (n *Node) startSIP() error {
	if n.opts.SIPListen == "" {
		return nil
	}
	conn, err := net.ListenPacket("udp", n.opts.SIPListen)
	if err != nil {
		return fmt.Errorf("medianode: %s: SIP listener on %s: %w", n.opts.ID, n.opts.SIPListen, err)
	}
	addr := conn.LocalAddr().(*net.UDPAddr)
	quiet := slog.New(slog.DiscardHandler)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("convene-mcu-sim/"+n.opts.ID),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)))
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("medianode: %s: SIP user agent: %w", n.opts.ID, err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		_ = ua.Close()
		_ = conn.Close()
		return fmt.Errorf("medianode: %s: SIP server: %w", n.opts.ID, err)
	}
	u := &sipUAS{n: n, ua: ua, conn: conn, byID: map[string]*SIPCall{}, log: n.log,
		contact: sip.Uri{Scheme: "sip", Host: addr.IP.String(), Port: addr.Port}}
	srv.OnInvite(u.invite)
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	srv.OnBye(u.bye)
	srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		// A CANCEL that matched no INVITE in progress.
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
	})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusMethodNotAllowed, "Method Not Allowed", nil))
	})
	go func() { _ = srv.ServeUDP(conn) }()
	n.sip.Store(u)
	return nil
}

// stopSIP stops the user agent server: its calls end with it, unannounced.
func (n *Node) stopSIP() {
	u := n.sip.Swap(nil)
	if u == nil {
		return
	}
	_ = u.conn.Close()
	_ = u.ua.Close()
}

func (u *sipUAS) record(c *SIPCall) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.calls) >= maxSIPCalls {
		delete(u.byID, u.calls[0].CallID)
		u.calls = u.calls[1:]
	}
	u.calls = append(u.calls, c)
	u.byID[c.CallID] = c
}

func (u *sipUAS) invite(req *sip.Request, tx sip.ServerTransaction) {
	callID := ""
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	if to := req.To(); to != nil && to.Params.Has("tag") {
		// A re-INVITE: the dialog goes on with the same media.
		u.mu.Lock()
		c, ok := u.byID[callID]
		live := ok && !c.Ended
		u.mu.Unlock()
		if !live {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
			return
		}
		u.answer(req, tx)
		return
	}
	e164 := req.Recipient.User
	c := &SIPCall{CallID: callID, E164: e164}
	if from := req.From(); from != nil {
		c.From = from.Address.User
	}
	if !u.n.Hosts(e164) {
		c.Status, c.Ended = sip.StatusNotFound, true
		u.record(c)
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotFound, "Conference Not Hosted Here", nil))
		return
	}
	c.Status = sip.StatusOK
	u.record(c)
	tx.OnCancel(func(*sip.Request) {
		u.mu.Lock()
		c.Status, c.Ended = sip.StatusRequestTerminated, true
		u.mu.Unlock()
	})
	u.answer(req, tx)
	u.log.Debug("media node answered a SIP call", "e164", e164, "call_id", callID)
}

// answer answers an INVITE 200 with the node's contact and an SDP answer.
func (u *sipUAS) answer(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", answerSDP(req.Body(), u.contact.Host))
	res.AppendHeader(&sip.ContactHeader{Address: u.contact})
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	if err := tx.Respond(res); err != nil && !errors.Is(err, context.Canceled) {
		u.log.Debug("SIP answer not sent", "err", err)
	}
}

func (u *sipUAS) bye(req *sip.Request, tx sip.ServerTransaction) {
	callID := ""
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	u.mu.Lock()
	c, ok := u.byID[callID]
	if ok {
		c.Ended = true
	}
	u.mu.Unlock()
	if !ok {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
}

// answerSDP answers an SDP offer with the same media lines, in order:
// audio and video accepted on made-up ports with the offer's first
// format, anything else refused (port 0).
func answerSDP(offer []byte, host string) []byte {
	var b strings.Builder
	b.WriteString("v=0\r\no=convene 1 1 IN IP4 " + host + "\r\ns=convene\r\nc=IN IP4 " + host + "\r\nt=0 0\r\n")
	port := 40000
	media := 0
	for _, line := range strings.Split(string(offer), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "m=") {
			continue
		}
		f := strings.Fields(line[2:])
		if len(f) < 4 {
			continue
		}
		media++
		switch f[0] {
		case "audio", "video":
			fmt.Fprintf(&b, "m=%s %d %s %s\r\n", f[0], port, f[2], f[3])
			port += 2
		default:
			fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", f[0], f[2], f[3])
		}
	}
	if media == 0 {
		fmt.Fprintf(&b, "m=audio %d RTP/AVP 0\r\n", port)
	}
	return []byte(b.String())
}
