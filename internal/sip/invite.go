package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/store"
)

// ringGrace is added to the ring timeout for the deadline of a call not
// yet answered: a node that dies while a call rings leaves it to the
// others' sweep, which ends it unanswered.
const ringGrace = 5 * time.Second

// invite routes an INVITE that starts a call: checked, authenticated,
// recorded as started, then forked to the called user's contacts or sent
// to the media node running the conference called.
func (n *Node) invite(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) {
	loop, ok := n.checkForward(ctx, req, tx)
	if !ok {
		return
	}
	// The called user's registrations are read while the credentials
	// are checked: with credentials, the INVITE is most likely a call.
	var pre <-chan bindingsRead
	if req.GetHeader("Proxy-Authorization") != nil && records.ValidSIPUser(req.Recipient.User) {
		pre = n.readBindings(ctx, req.Recipient.User)
	}
	user, ok := n.authenticate(ctx, req, tx)
	if !ok {
		return
	}
	if user != req.From().Address.User {
		n.respond(ctx, tx, req, sip.StatusForbidden, "From Is Not The Authenticated User")
		return
	}
	ctx = withCallLog(ctx)
	n.logMsg(ctx, LogIn, req.Source(), req)
	now := n.now()
	call := store.SIPCall{CallID: req.CallID().Value(), FromTag: tagOf(req.From().Params), Caller: user,
		Called: req.Recipient.User, Media: mediaOf(req.Body()), Node: n.opts.Name, Platform: n.opts.Platform,
		Start: now, Deadline: now.Add(n.opts.RingTimeout + ringGrace), FromHeader: req.From().Value(),
		CallerAddr: replyAddr(req), CallerTransport: strings.ToUpper(req.Transport()), CallerCSeq: req.CSeq().SeqNo}
	if c := req.Contact(); c != nil {
		call.CallerContact = c.Address.String()
	}
	targets, code, reason := n.resolve(ctx, req, &call, pre)
	created, err := n.deps.Store.SIPCallStart(ctx, call)
	if err != nil {
		n.log.Warn("sip: a call could not be recorded in the store", "call_id", call.CallID, "err", err)
		n.respond(ctx, tx, req, sip.StatusServiceUnavailable, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
		return
	}
	if created {
		n.record().CallStarted(ctx, eventFrom(call))
	}
	if len(targets) == 0 {
		n.respond(ctx, tx, req, code, reason)
		n.endCall(ctx, call.CallID, store.SIPCall{End: n.now(), Status: code, Reason: EndUnrouted})
		return
	}
	markReceived(req)
	f := &fork{n: n, req: req, tx: tx, loop: loop}
	f.onAnswer = func(ctx context.Context, b *branch, res *sip.Response) { n.answered(ctx, call, b, res) }
	f.onFail = func(ctx context.Context, code int, why string) {
		n.endCall(ctx, call.CallID, store.SIPCall{End: n.now(), Status: code, Reason: why})
	}
	f.run(ctx, targets, true)
}

// checkForward checks what every request the node forwards must pass: the
// domain is this platform's, the request has hops left, and it is not
// looping. It answers the request when not.
func (n *Node) checkForward(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) (loop string, ok bool) {
	n.popOurRoutes(req) // a route pre-loaded towards this platform
	if req.Route() != nil || !n.servesDomain(req.Recipient.Host) {
		n.respond(ctx, tx, req, sip.StatusForbidden, "Relaying Denied")
		return "", false
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		n.respond(ctx, tx, req, sip.StatusTooManyHops, "Too Many Hops")
		return "", false
	}
	loop = loopHash(req)
	if n.looped(req, loop) {
		n.respond(ctx, tx, req, sip.StatusLoopDetected, "Loop Detected")
		return "", false
	}
	return loop, true
}

// resolve finds where a call goes: the contacts of a registered user, or
// the media node running the conference called. With no target it says
// what to answer. It sets call.E164 for a conference.
// pre, when not nil, brings the called user's registrations, read
// beforehand.
func (n *Node) resolve(ctx context.Context, req *sip.Request, call *store.SIPCall, pre <-chan bindingsRead) ([]target, int, string) {
	num := req.Recipient.User
	id := call.CallID
	if num == "" {
		n.logRoute(ctx, id, "no number dialled")
		return nil, sip.StatusAddressIncomplete, "Address Incomplete"
	}
	if records.ValidSIPUser(num) {
		var r bindingsRead
		if pre != nil {
			r = <-pre
		} else {
			r.bindings, r.err = n.deps.Store.SIPBindings(ctx, num, n.now())
		}
		bindings, err := r.bindings, r.err
		if err != nil {
			n.log.Warn("sip: registrations could not be read", "aor", num, "err", err)
			return nil, sip.StatusServiceUnavailable, "Service Unavailable"
		}
		var ts []target
		var where []string
		for _, b := range bindings {
			var u sip.Uri
			if err := sip.ParseUri(b.Contact, &u); err != nil || u.Host == "" {
				continue
			}
			t := targetOf(u)
			if n.port(t.transport) == 0 {
				continue // a transport this node does not serve
			}
			ts = append(ts, t)
			where = append(where, b.Contact)
		}
		if len(ts) > 0 {
			n.logRoute(ctx, id, fmt.Sprintf("user %s: forking to %d contact(s): %s", num, len(ts), strings.Join(where, ", ")))
			return ts, 0, ""
		}
		if _, err := n.subscriber(ctx, num); err == nil {
			n.logRoute(ctx, id, "user "+num+" is registered nowhere")
			return nil, sip.StatusTemporarilyUnavailable, "Temporarily Unavailable"
		} else if !errors.Is(err, records.ErrNotFound) {
			n.log.Warn("sip: a subscriber could not be read", "user", num, "err", err)
		}
	}
	entry, found, err := n.dir.conference(ctx, num)
	switch {
	case errors.Is(err, errNoDirectory):
		n.logRoute(ctx, id, num+": not a user, and no registry to ask")
		return nil, sip.StatusNotFound, "Not Found"
	case err != nil:
		n.log.Warn("sip: the registry did not answer", "e164", num, "err", err)
		n.logRoute(ctx, id, num+": the registry did not answer")
		return nil, sip.StatusServiceUnavailable, "Service Unavailable"
	case !found:
		n.logRoute(ctx, id, num+": no such user or conference")
		return nil, sip.StatusNotFound, "Not Found"
	}
	call.E164 = num
	if entry.Kind != protocol.EntryInstant || entry.Node == "" {
		n.logRoute(ctx, id, fmt.Sprintf("conference %s is not running (registry kind %d)", num, entry.Kind))
		return nil, sip.StatusTemporarilyUnavailable, "Conference Not Running"
	}
	info, ok, err := n.dir.node(ctx, entry.Node)
	if err != nil {
		n.log.Warn("sip: RMS did not answer", "node", entry.Node, "err", err)
	}
	if !ok || info.State != protocol.NodeUp || info.SIP == "" {
		n.logRoute(ctx, id, fmt.Sprintf("conference %s runs on node %s, which takes no SIP call now", num, entry.Node))
		return nil, sip.StatusTemporarilyUnavailable, "Conference Node Unreachable"
	}
	var u sip.Uri
	if err := sip.ParseUri(info.SIP, &u); err != nil || u.Host == "" {
		n.logRoute(ctx, id, fmt.Sprintf("conference %s: node %s announced a SIP contact that does not parse", num, entry.Node))
		return nil, sip.StatusTemporarilyUnavailable, "Conference Node Unreachable"
	}
	u.User = num
	t := targetOf(u)
	n.logRoute(ctx, id, fmt.Sprintf("conference %s runs on node %s: to %s", num, entry.Node, u.String()))
	return []target{t}, 0, ""
}

// answered records a call's first 2xx before it goes upstream: its answer
// time, to-tag, media, the callee's contact and the session's deadline.
func (n *Node) answered(ctx context.Context, call store.SIPCall, b *branch, res *sip.Response) {
	now := n.now()
	up := store.SIPCall{CallID: call.CallID, ToTag: tagOf(res.To().Params), Answer: now, Status: res.StatusCode,
		ToHeader: res.To().Value(), CalleeAddr: b.t.addr, CalleeTransport: b.t.transport}
	if c := res.Contact(); c != nil {
		up.CalleeContact = c.Address.String()
		if addr, tp := hopOf(c.Address); addr != "" {
			if _, _, err := net.SplitHostPort(addr); err == nil {
				up.CalleeAddr, up.CalleeTransport = addr, tp
			}
		}
	}
	if call.Media == "" {
		up.Media = mediaOf(res.Body())
	}
	se := sessionExpires(res)
	if se == 0 {
		se = sessionExpires(b.req)
	}
	up.SessionExpires = int(se / time.Second)
	up.Deadline = n.deadline(now, se)
	got, err := n.deps.Store.SIPCallUpdate(ctx, up, "answer")
	if err != nil {
		n.log.Warn("sip: a call's answer was not recorded in the store", "call_id", call.CallID, "err", err)
	}
	if got != store.SIPCallUpdated && err == nil {
		return
	}
	ev := eventFrom(call)
	ev.ToTag, ev.Answer, ev.Status, ev.Connected = up.ToTag, now, res.StatusCode, true
	if ev.Media == "" {
		ev.Media = up.Media
	}
	n.logRoute(ctx, call.CallID, "answered by "+b.t.addr)
	n.record().CallAnswered(ctx, ev)
}

// deadline is when a session refreshed at t ends unless refreshed again:
// after its session interval se (RFC 4028), or MaxCallDuration without one.
func (n *Node) deadline(t time.Time, se time.Duration) time.Time {
	if se > 0 {
		return t.Add(se)
	}
	return t.Add(n.opts.MaxCallDuration)
}

// bindingsRead is the outcome of reading an address of record's
// registrations.
type bindingsRead struct {
	bindings []store.SIPBinding
	err      error
}

// readBindings reads aor's registrations in the background: the answer
// comes on the channel (buffered: nobody need take it).
func (n *Node) readBindings(ctx context.Context, aor string) <-chan bindingsRead {
	out := make(chan bindingsRead, 1)
	now := n.now()
	go func() {
		b, err := n.deps.Store.SIPBindings(ctx, aor, now)
		out <- bindingsRead{b, err}
	}()
	return out
}
