package sip

import (
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// A node's identity in the messages it forwards:
//
//   - Via branches are z9hG4bK.cv.<node>.<loop>.<random>: the magic
//     cookie, the node's name (unique among the platform's SIP nodes, so
//     two nodes never make the same branch), a hash of the request's
//     loop-detection fields as the node received it (RFC 3261 §16.6 step
//     8), and a random part;
//   - record-routes are sip:<advertised host>:<port>;transport=<t>;lr
//     with cvp=<platform> and cvn=<node>: any node of the platform
//     recognises a route of any other (cvp) and pops it, so an in-dialog
//     request reaching either datacenter is routed by the node it
//     reaches.
const (
	branchPrefix = sip.RFC3261BranchMagicCookie + ".cv."
	paramPlat    = "cvp"
	paramNode    = "cvn"
)

// loopHash hashes the fields of a request as received that, coming back
// unchanged, mean a loop rather than a spiral: the Request-URI, the tags,
// Call-ID, CSeq number, and the Route and Proxy-Require headers.
func loopHash(req *sip.Request) string {
	h := fnv.New64a()
	w := func(s string) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	w(req.Recipient.String())
	if f := req.From(); f != nil {
		t, _ := f.Params.Get("tag")
		w(t)
	}
	if to := req.To(); to != nil {
		t, _ := to.Params.Get("tag")
		w(t)
	}
	if c := req.CallID(); c != nil {
		w(c.Value())
	}
	if c := req.CSeq(); c != nil {
		w(strconv.FormatUint(uint64(c.SeqNo), 10))
	}
	for _, r := range req.GetHeaders("Route") {
		w(r.Value())
	}
	if p := req.GetHeader("Proxy-Require"); p != nil {
		w(p.Value())
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

func randomPart() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// branch makes a Via branch of this node for a request with loop hash
// loop.
func (n *Node) branch(loop string) string {
	return branchPrefix + n.opts.Name + "." + loop + "." + randomPart()
}

// looped reports whether req went through this node before with the same
// loop-detection fields: one of its Vias is this node's with a branch of
// the same loop hash. A spiral (the Request-URI changed) is no loop.
func (n *Node) looped(req *sip.Request, loop string) bool {
	mine := branchPrefix + n.opts.Name + "." + loop + "."
	for _, h := range req.GetHeaders("Via") {
		v, ok := h.(*sip.ViaHeader)
		if !ok {
			continue
		}
		if b, ok := v.Params.Get("branch"); ok && strings.HasPrefix(b, mine) {
			return true
		}
	}
	return false
}

// port is the port the node listens on for transport ("UDP", "TCP"), 0
// for a transport it does not serve.
func (n *Node) port(transport string) int {
	switch strings.ToUpper(transport) {
	case "UDP":
		return n.udpPort
	case "TCP":
		return n.tcpPort
	}
	return 0
}

// via is this node's Via for a request sent over transport.
func (n *Node) via(transport, loop string) *sip.ViaHeader {
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(transport),
		Host: n.opts.Advertise, Port: n.port(transport), Params: sip.NewParams()}
	v.Params.Add("branch", n.branch(loop))
	return v
}

// recordRoute is this node's Record-Route for the side of a call reached
// over transport.
func (n *Node) recordRoute(transport string) *sip.RecordRouteHeader {
	params := sip.NewParams()
	params.Add("transport", strings.ToLower(transport))
	params.Add("lr", "")
	params.Add(paramPlat, n.opts.Platform)
	params.Add(paramNode, n.opts.Name)
	return &sip.RecordRouteHeader{Address: sip.Uri{Scheme: "sip", Host: n.opts.Advertise, Port: n.port(transport), UriParams: params}}
}

// ours reports whether a URI names a node of this platform: it carries
// the platform's record-route mark, or it is this node's own address.
func (n *Node) ours(u sip.Uri) bool {
	if p, ok := u.UriParams.Get(paramPlat); ok && p == n.opts.Platform {
		return true
	}
	port := u.Port
	if port == 0 {
		port = 5060
	}
	return n.isSelf(u.Host, u.Port) || n.isPeer(net.JoinHostPort(strings.Trim(u.Host, "[]"), strconv.Itoa(port)))
}

// isSelf reports whether host:port is this node (port 0: the default
// port, 5060).
func (n *Node) isSelf(host string, port int) bool {
	host = strings.Trim(host, "[]")
	if !strings.EqualFold(host, n.opts.Advertise) && !n.isLocalName(host) {
		return false
	}
	if port == 0 {
		port = 5060
	}
	return port == n.udpPort || port == n.tcpPort
}

// isLocalName reports whether host is one of the node's listen hosts.
func (n *Node) isLocalName(host string) bool {
	for _, a := range []string{n.opts.UDP, n.opts.TCP} {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" && strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// servesDomain reports whether a request-URI host is this platform's: its
// SIP domain or the node's own address.
func (n *Node) servesDomain(host string) bool {
	host = strings.Trim(host, "[]")
	return strings.EqualFold(host, n.opts.Domain) || strings.EqualFold(host, n.opts.Advertise) || n.isLocalName(host)
}
