package sip

import (
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// message is a request or a response.
type message interface {
	sip.Message
	StartLine() string
	GetHeader(name string) sip.Header
	RemoveHeader(name string) bool
}

// target is where a request goes next: its Request-URI and the address
// and transport of the next hop.
type target struct {
	uri       sip.Uri
	addr      string // host:port
	transport string // "UDP" or "TCP"
}

// hopOf is the next hop of a URI (a contact, a route): its host and port
// (5060 when none) over its transport parameter (UDP when none).
func hopOf(u sip.Uri) (addr, transport string) {
	transport = "UDP"
	if t, ok := u.UriParams.Get("transport"); ok && t != "" {
		transport = strings.ToUpper(t)
	}
	port := u.Port
	if port == 0 {
		port = 5060
	}
	return net.JoinHostPort(strings.Trim(u.Host, "[]"), strconv.Itoa(port)), transport
}

func targetOf(u sip.Uri) target {
	addr, tp := hopOf(u)
	return target{uri: u, addr: addr, transport: tp}
}

// reply answers req on tx with a response of the node's own.
func reply(tx sip.ServerTransaction, req *sip.Request, code int, reason string, headers ...sip.Header) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range headers {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
	return res
}

// upstream makes, from a response received on a branch, the response to
// send on the server transaction of req: the same message without the
// node's own Via, addressed where req came from.
func upstream(req *sip.Request, res *sip.Response) *sip.Response {
	out := sip.NewResponse(res.StatusCode, res.Reason)
	out.SipVersion = res.SipVersion
	first := true
	for _, h := range res.Headers() {
		if first && strings.EqualFold(h.Name(), "Via") {
			first = false
			continue
		}
		out.AppendHeader(sip.HeaderClone(h))
	}
	out.SetBody(res.Body())
	out.SetTransport(req.Transport())
	out.SetDestination(replyAddr(req))
	return out
}

// replyAddr is where responses to req go (RFC 3261 §18.2.2, RFC 3581):
// the source address, with the Via's port unless it asked for rport.
func replyAddr(req *sip.Request) string {
	src := req.Source()
	v := req.Via()
	if v == nil || src == "" {
		return src
	}
	if _, ok := v.Params.Get("rport"); ok {
		return src
	}
	host, _, err := net.SplitHostPort(src)
	if err != nil {
		return src
	}
	port := v.Port
	if port == 0 {
		port = 5060
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// markReceived adds received and rport to the top Via of a request about
// to be forwarded (RFC 3261 §18.2.1, RFC 3581), so that the responses
// find their way back to where it came from.
func markReceived(req *sip.Request) {
	v := req.Via()
	src := req.Source()
	if v == nil || src == "" {
		return
	}
	host, port, err := net.SplitHostPort(src)
	if err != nil {
		return
	}
	if rp, ok := v.Params.Get("rport"); ok && rp == "" {
		v.Params.Add("rport", port)
		v.Params.Add("received", host)
		return
	}
	if !strings.EqualFold(strings.Trim(v.Host, "[]"), host) {
		v.Params.Add("received", host)
	}
}

// removeAll removes every header named name (any case) for which drop
// says so, keeping the others in their order.
func removeAll(m message, name string, drop func(sip.Header) bool) {
	var keep []sip.Header
	found := false
	for _, h := range m.GetHeaders(name) {
		if drop(h) {
			found = true
			continue
		}
		keep = append(keep, h)
	}
	if !found {
		return
	}
	all := m.GetHeaders(name)
	for _, h := range all {
		m.RemoveHeader(h.Name())
	}
	for _, h := range keep {
		m.AppendHeader(h)
	}
}

// popOurRoutes removes the Route headers at the top of req that name a
// node of this platform, and reports whether it removed any.
func (n *Node) popOurRoutes(req *sip.Request) bool {
	popped := false
	for {
		r := req.Route()
		if r == nil || !n.ours(r.Address) {
			return popped
		}
		req.RemoveHeader(r.Name())
		popped = true
	}
}

// nextHop is where a request whose Routes were processed goes: its top
// Route, or else its Request-URI.
func nextHop(req *sip.Request) target {
	if r := req.Route(); r != nil {
		t := targetOf(r.Address)
		t.uri = req.Recipient
		return t
	}
	return targetOf(req.Recipient)
}

// decMaxForwards lowers Max-Forwards before forwarding (adding 70 when
// absent), and reports false when the request may go no further.
func decMaxForwards(req *sip.Request) bool {
	mf := req.MaxForwards()
	if mf == nil {
		v := sip.MaxForwardsHeader(70)
		req.AppendHeader(&v)
		return true
	}
	if mf.Val() == 0 {
		return false
	}
	mf.Dec()
	return true
}

// tagOf is the tag parameter of a From or To header ("" when none).
func tagOf(p sip.HeaderParams) string {
	t, _ := p.Get("tag")
	return t
}

// allowHeader lists the methods the edge handles.
func allowHeader() sip.Header {
	return sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, MESSAGE, REFER, NOTIFY, SUBSCRIBE, PRACK")
}
