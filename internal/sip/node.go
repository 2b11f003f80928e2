package sip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/convene/convene/internal/sip/digest"
	"github.com/convene/convene/internal/store"
)

// udpBuffer is the size asked for the UDP socket's buffers.
const udpBuffer = 4 << 20

// Node is one SIP edge node: registrar and stateful proxy on its own
// listeners, sharing everything else with the platform's other nodes
// through the store.
type Node struct {
	opts Options
	deps Deps
	log  *slog.Logger
	now  func() time.Time

	ua      *sipgo.UserAgent
	client  sender
	udp     net.PacketConn
	tcp     net.Listener
	udpAddr sip.Addr // for requests sent from the UDP listener
	udpPort int
	tcpPort int

	auth  *digest.Verifier
	subs  subscribers
	dir   *directory
	peers atomic.Pointer[map[string]bool] // host:port of every node of the platform (sip/nodes)

	started atomic.Bool
	ready   atomic.Bool
	forgets chan string // reported calls to drop from the store
	stop    chan struct{}
	wg      sync.WaitGroup
	closeMu sync.Mutex
	closed  bool
}

// New checks the options and dependencies and returns a node that is not
// started.
func New(opts Options, deps Deps) (*Node, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Subscribers == nil {
		return nil, fmt.Errorf("%w: a SIP node needs the platform store and the subscribers' records", ErrBadOptions)
	}
	if deps.Recorder == nil {
		deps.Recorder = nopRecorder{}
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	n := &Node{opts: opts, deps: deps, now: deps.Now, stop: make(chan struct{}), forgets: make(chan string, 4*forgetBatch),
		log: deps.Log.With("service", "sip", "node", opts.Name, "platform", opts.Platform)}
	n.dir = newDirectory(n)
	return n, nil
}

// Name is the node's identity.
func (n *Node) Name() string { return n.opts.Name }

// UDPAddr and TCPAddr are the addresses the node serves (after Start; ""
// for a transport it does not serve).
func (n *Node) UDPAddr() string {
	if n.udp == nil {
		return ""
	}
	return n.udp.LocalAddr().String()
}

func (n *Node) TCPAddr() string {
	if n.tcp == nil {
		return ""
	}
	return n.tcp.Addr().String()
}

// Ready reports whether the node serves.
func (n *Node) Ready() bool { return n.ready.Load() }

// Start takes the platform's nonce key from the store, listens, and
// serves in the background. It returns once the listeners are open.
func (n *Node) Start(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	secret, err := n.deps.Store.SIPDigestSecret(ctx, hex.EncodeToString(seed[:]))
	if err != nil {
		return fmt.Errorf("sip %s: the platform store did not give the digest key: %w", n.opts.Name, err)
	}
	n.auth = &digest.Verifier{Realm: n.opts.Domain, Algorithms: n.opts.Algorithms,
		Nonces: digest.NewNonces([]byte(secret), n.opts.NonceTTL), Counts: nonceCounter{n}, Secrets: n.secrets}

	quiet := slog.New(demoted{n.log.Handler()})
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("convene-sip/"+n.opts.Name), sipgo.WithUserAgentHostname(n.opts.Advertise),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet),
			sip.WithTransactionLayerUnhandledResponseHandler(n.strayResponse)))
	if err != nil {
		return fmt.Errorf("sip %s: %w", n.opts.Name, err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		_ = ua.Close()
		return fmt.Errorf("sip %s: %w", n.opts.Name, err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(quiet), sipgo.WithClientHostname(n.opts.Advertise))
	if err != nil {
		_ = ua.Close()
		return fmt.Errorf("sip %s: %w", n.opts.Name, err)
	}
	n.ua, n.client = ua, client
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.CANCEL, sip.REGISTER, sip.OPTIONS} {
		srv.OnRequest(m, n.serve)
	}
	srv.OnNoRoute(n.serve)

	if n.opts.UDP != "" {
		udp, err := net.ListenPacket("udp", n.opts.UDP)
		if err != nil {
			_ = ua.Close()
			return fmt.Errorf("sip %s: listen on UDP %s: %w", n.opts.Name, n.opts.UDP, err)
		}
		if c, ok := udp.(*net.UDPConn); ok {
			// A burst must wait in the socket rather than be dropped
			// while the node is busy: the kernel caps this at
			// net.core.rmem_max.
			_ = c.SetReadBuffer(udpBuffer)
			_ = c.SetWriteBuffer(udpBuffer)
		}
		a := udp.LocalAddr().(*net.UDPAddr)
		n.udp, n.udpPort, n.udpAddr = udp, a.Port, sip.Addr{IP: a.IP, Port: a.Port}
	}
	if n.opts.TCP != "" {
		tcp, err := net.Listen("tcp", n.opts.TCP)
		if err != nil {
			if n.udp != nil {
				_ = n.udp.Close()
			}
			_ = ua.Close()
			return fmt.Errorf("sip %s: listen on TCP %s: %w", n.opts.Name, n.opts.TCP, err)
		}
		n.tcp, n.tcpPort = tcp, tcp.Addr().(*net.TCPAddr).Port
	}
	if n.udp != nil {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); _ = srv.ServeUDP(n.udp) }()
		// Requests leave from the listener: it must be in the
		// transport's pool before the first is sent.
		if err := waitServing(ctx, ua, n.udp.LocalAddr().String()); err != nil {
			n.close()
			return fmt.Errorf("sip %s: %w", n.opts.Name, err)
		}
	}
	if n.tcp != nil {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); _ = srv.ServeTCP(n.tcp) }()
	}
	if err := n.deps.Store.SIPAnnounceNode(ctx, n.opts.Name, n.addrs()); err != nil {
		n.close()
		return fmt.Errorf("sip %s: the platform store did not take the node's addresses: %w", n.opts.Name, err)
	}
	n.loadPeers(ctx)
	n.wg.Add(2)
	go n.sweepLoop()
	go n.forgetLoop()
	n.ready.Store(true)
	n.log.Info("sip node serving", "udp", n.UDPAddr(), "tcp", n.TCPAddr(), "domain", n.opts.Domain)
	return nil
}

// Shutdown stops serving: the listeners close, transactions in flight end
// without an answer, the sweeper stops. What the node shares is in the
// store: the other nodes carry on with every registration and call. It
// waits for the node's goroutines until ctx ends.
func (n *Node) Shutdown(ctx context.Context) error {
	n.close()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sip %s: shutdown: %w", n.opts.Name, ctx.Err())
	}
}

// Kill stops the node at once, as a crash would, waiting for nothing.
func (n *Node) Kill() { n.close() }

func (n *Node) close() {
	n.closeMu.Lock()
	defer n.closeMu.Unlock()
	if n.closed || !n.started.Load() {
		n.closed = true
		return
	}
	n.closed = true
	n.ready.Store(false)
	close(n.stop)
	if n.udp != nil {
		_ = n.udp.Close()
	}
	if n.tcp != nil {
		_ = n.tcp.Close()
	}
	if n.ua != nil {
		_ = n.ua.Close()
	}
}

// serve is every request's entry: one goroutine per request, held until
// its transaction has its final answer. A panic in handling one request
// answers 500 and is logged: it never takes the node down.
func (n *Node) serve(req *sip.Request, tx sip.ServerTransaction) {
	defer func() {
		if p := recover(); p != nil {
			n.log.Error("sip: a request's handling failed", "method", string(req.Method), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if tx != nil && !req.IsAck() {
				reply(tx, req, sip.StatusInternalServerError, "Server Internal Error")
			}
		}
	}()
	if !n.ready.Load() {
		return
	}
	n.log.Debug("sip: request", "method", string(req.Method), "source", req.Source())
	if err := checkRequest(req); err != nil {
		if !req.IsAck() {
			reply(tx, req, sip.StatusBadRequest, err.Error())
		}
		return
	}
	ctx := context.Background()
	inDialog := tagOf(req.To().Params) != ""
	if inDialog || req.IsAck() || req.IsCancel() {
		ctx = withCallLog(ctx)
		n.logMsg(ctx, LogIn, req.Source(), req)
	}
	switch {
	case req.IsAck():
		n.ack(ctx, req)
	case req.IsCancel():
		// A CANCEL that matched no INVITE here (the transaction layer
		// answers those that do): nothing to cancel on this node.
		n.respond(ctx, tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
	case inDialog:
		n.inDialog(ctx, req, tx)
	case req.Method == sip.REGISTER:
		n.register(ctx, req, tx)
	case req.Method == sip.OPTIONS:
		n.respond(ctx, tx, req, sip.StatusOK, "OK", allowHeader(), sip.NewHeader("Accept", "application/sdp"))
	case req.IsInvite():
		n.invite(ctx, req, tx)
	default:
		n.outOfDialog(ctx, req, tx)
	}
}

// respond answers with a response of the node's own, logged with the call.
func (n *Node) respond(ctx context.Context, tx sip.ServerTransaction, req *sip.Request, code int, reason string, headers ...sip.Header) {
	res := reply(tx, req, code, reason, headers...)
	n.logMsg(ctx, LogOut, res.Destination(), res)
}

// errMalformed describes a request the node cannot handle as SIP.
var errMalformed = errors.New("malformed request")

// checkRequest checks the headers every request needs (RFC 3261 §8.1.1).
func checkRequest(req *sip.Request) error {
	switch {
	case req.From() == nil:
		return fmt.Errorf("%w: no From", errMalformed)
	case req.To() == nil:
		return fmt.Errorf("%w: no To", errMalformed)
	case req.CallID() == nil || req.CallID().Value() == "":
		return fmt.Errorf("%w: no Call-ID", errMalformed)
	case req.CSeq() == nil:
		return fmt.Errorf("%w: no CSeq", errMalformed)
	case req.Via() == nil:
		return fmt.Errorf("%w: no Via", errMalformed)
	case req.CSeq().MethodName != req.Method:
		return fmt.Errorf("%w: the CSeq method is not the request's", errMalformed)
	case req.Recipient.Host == "" && !req.Recipient.Wildcard:
		return fmt.Errorf("%w: no Request-URI host", errMalformed)
	}
	return nil
}

// send sends a request to a target as a client transaction (the target's
// transport, from the node's listener for UDP).
func (n *Node) send(ctx context.Context, req *sip.Request, t target) (sip.ClientTransaction, error) {
	n.address(req, t)
	tx, err := n.client.TransactionRequest(ctx, req, prebuilt)
	if err == nil {
		n.logMsg(ctx, LogOut, t.addr, req)
	}
	return tx, err
}

// sendStateless sends a request (an ACK) without a transaction.
func (n *Node) sendStateless(ctx context.Context, req *sip.Request, t target) error {
	n.address(req, t)
	err := n.client.WriteRequest(req, prebuilt)
	if err == nil {
		n.logMsg(ctx, LogOut, t.addr, req)
	}
	return err
}

func (n *Node) address(req *sip.Request, t target) {
	req.SetTransport(t.transport)
	req.SetDestination(t.addr)
	req.Laddr = sip.Addr{}
	if t.transport == "UDP" && n.udp != nil {
		req.Laddr = n.udpAddr
	}
}

// sender sends requests: sipgo's client, or a stand-in in tests.
type sender interface {
	TransactionRequest(ctx context.Context, req *sip.Request, opts ...sipgo.ClientRequestOption) (sip.ClientTransaction, error)
	WriteRequest(req *sip.Request, opts ...sipgo.ClientRequestOption) error
}

// prebuilt tells sipgo's client that a request is complete as it is.
func prebuilt(*sipgo.Client, *sip.Request) error { return nil }

// strayResponse handles a response that matched no transaction. One
// whose top Via is this node's (a 2xx sent again after the INVITE's
// transaction ended) goes on to the next Via, statelessly. One whose top
// Via is another node's of the platform (a user agent that answers where
// the dialog began rather than to the Via, as sipp does) goes to that
// node. Anything else is dropped.
func (n *Node) strayResponse(res *sip.Response) {
	v := res.Via()
	if v == nil {
		return
	}
	b, _ := v.Params.Get("branch")
	if !strings.HasPrefix(b, branchPrefix) {
		return
	}
	var out *sip.Response
	var next *sip.ViaHeader
	switch {
	case strings.HasPrefix(b, branchPrefix+n.opts.Name+".") && n.isSelf(v.Host, v.Port):
		out = sip.NewResponse(res.StatusCode, res.Reason)
		first := true
		for _, h := range res.Headers() {
			if first && h.Name() == "Via" {
				first = false
				continue
			}
			out.AppendHeader(sip.HeaderClone(h))
		}
		out.SetBody(res.Body())
		next = out.Via()
	case n.isPeer(net.JoinHostPort(v.Host, strconv.Itoa(v.Port))):
		out, next = res, v
	}
	if next == nil {
		return
	}
	host, port := next.Host, next.Port
	if r, ok := next.Params.Get("received"); ok && r != "" {
		host = r
	}
	if rp, ok := next.Params.Get("rport"); ok && rp != "" {
		if p, err := strconv.Atoi(rp); err == nil {
			port = p
		}
	}
	if port == 0 {
		port = 5060
	}
	dest := net.JoinHostPort(host, strconv.Itoa(port))
	var err error
	if strings.EqualFold(next.Transport, "UDP") && n.udp != nil {
		// From the listener: a response has no connection of its own.
		var ua *net.UDPAddr
		if ua, err = net.ResolveUDPAddr("udp", dest); err == nil {
			_, err = n.udp.WriteTo([]byte(out.String()), ua)
		}
	} else {
		out.SetTransport(next.Transport)
		out.SetDestination(dest)
		err = n.ua.TransportLayer().WriteMsg(out)
	}
	if err != nil {
		n.log.Debug("sip: a stray response was not forwarded", "to", dest, "err", err)
	}
}

// addrs are the node's addresses as other nodes see them.
func (n *Node) addrs() string {
	var a []string
	for _, p := range []int{n.udpPort, n.tcpPort} {
		if p != 0 {
			a = append(a, net.JoinHostPort(n.opts.Advertise, strconv.Itoa(p)))
		}
	}
	return strings.Join(a, " ")
}

// loadPeers reads where the platform's SIP nodes listen.
func (n *Node) loadPeers(ctx context.Context) {
	m, err := n.deps.Store.SIPNodes(ctx)
	if err != nil {
		n.log.Warn("sip: the platform's SIP nodes could not be read", "err", err)
		return
	}
	peers := map[string]bool{}
	for name, addrs := range m {
		if name == n.opts.Name {
			continue
		}
		for _, a := range strings.Fields(addrs) {
			peers[a] = true
		}
	}
	n.peers.Store(&peers)
}

// isPeer reports whether host:port is another node of the platform.
func (n *Node) isPeer(addr string) bool {
	p := n.peers.Load()
	return p != nil && (*p)[addr]
}

// waitServing waits until sipgo serves a UDP listener.
func waitServing(ctx context.Context, ua *sipgo.UserAgent, addr string) error {
	pool := ua.TransportLayer().Pool("udp")
	for range 1000 {
		if c := pool.Get(addr); c != nil {
			c.Ref(-1)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return fmt.Errorf("the UDP listener %s is not served", addr)
}

// nonceCounter keeps nonce counts in the store.
type nonceCounter struct{ n *Node }

func (c nonceCounter) UseNonce(ctx context.Context, nonce string, nc uint32, until time.Time) error {
	err := c.n.deps.Store.SIPUseNonce(ctx, nonce, nc, until, c.n.now())
	if errors.Is(err, store.ErrSIPNonceReplay) {
		return fmt.Errorf("%w: %w", digest.ErrReplay, err)
	}
	return err
}

// demoted passes sipgo's own log lines three levels lower: its errors
// (a packet that does not parse, a peer that went away) are a node's
// debug information, and a flood of bad packets must not flood the log.
type demoted struct{ h slog.Handler }

func (d demoted) Enabled(ctx context.Context, l slog.Level) bool { return d.h.Enabled(ctx, l-12) }
func (d demoted) Handle(ctx context.Context, r slog.Record) error {
	r.Level -= 12
	return d.h.Handle(ctx, r)
}
func (d demoted) WithAttrs(a []slog.Attr) slog.Handler { return demoted{d.h.WithAttrs(a)} }
func (d demoted) WithGroup(g string) slog.Handler      { return demoted{d.h.WithGroup(g)} }
