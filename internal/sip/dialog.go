package sip

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/convene/convene/internal/store"
)

// Requests inside a dialog follow the route set the INVITE recorded: the
// record-routes of the node that routed it. Any node of the platform pops
// them (ours) and sends the request on to the next route or the
// Request-URI, the other party's contact; so a BYE that reaches the other
// datacenter is routed there, and the call it ends is ended in the store
// by whichever node sees it.

// ack forwards an ACK statelessly: the ACK of a 2xx along the dialog's
// route. (The ACK of a non-2xx answer ends at the node's own transaction.)
func (n *Node) ack(ctx context.Context, req *sip.Request) {
	if !n.popOurRoutes(req) || !decMaxForwards(req) {
		return
	}
	t := nextHop(req)
	if n.port(t.transport) == 0 {
		return
	}
	// A stateless branch (RFC 3261 §16.11): the same for a retransmission.
	v := n.via(t.transport, loopHash(req))
	if in := req.Via(); in != nil {
		b, _ := in.Params.Get("branch")
		v.Params.Add("branch", branchPrefix+n.opts.Name+"."+loopHash(req)+".a"+b)
	}
	markReceived(req)
	req.PrependHeader(v)
	if err := n.sendStateless(ctx, req, t); err != nil {
		n.log.Debug("sip: an ACK was not forwarded", "to", t.addr, "err", err)
	}
}

// inDialog routes a request of an established dialog.
func (n *Node) inDialog(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) {
	if !n.popOurRoutes(req) {
		if req.Method == sip.BYE && n.addressedHere(req.Recipient) {
			n.byeOffRoute(ctx, req, tx)
			return
		}
		// Not along a route this platform recorded: not ours to relay.
		n.respond(ctx, tx, req, sip.StatusForbidden, "Not On A Route Of This Platform")
		return
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		n.respond(ctx, tx, req, sip.StatusTooManyHops, "Too Many Hops")
		return
	}
	loop := loopHash(req)
	if n.looped(req, loop) {
		n.respond(ctx, tx, req, sip.StatusLoopDetected, "Loop Detected")
		return
	}
	t := nextHop(req)
	if n.port(t.transport) == 0 {
		n.respond(ctx, tx, req, sip.StatusServiceUnavailable, "Transport Not Served")
		return
	}
	markReceived(req)
	callID := req.CallID().Value()
	if req.IsInvite() {
		// A re-INVITE: proxied as any INVITE, refreshing the session.
		f := &fork{n: n, req: req, tx: tx, loop: loop}
		f.onAnswer = func(ctx context.Context, b *branch, res *sip.Response) { n.refreshed(ctx, callID, b.req, res) }
		f.run(ctx, []target{t}, false)
		return
	}
	if req.Method == sip.BYE {
		// Whatever the answer, the call is over: its end is recorded
		// before the BYE goes on, so a node that dies meanwhile loses no
		// call that was hung up. A BYE whose tags name no dialog of the
		// call ends nothing here and goes on all the same: the party it
		// reaches answers it (481).
		_, _, _ = n.endBye(ctx, req)
	}
	res := n.relay(ctx, req, tx, t, loop)
	if req.Method == sip.UPDATE && res != nil && res.IsSuccess() {
		n.refreshed(ctx, callID, req, res)
	}
}

// refreshed moves a call's deadline after a session refresh (a 2xx to a
// re-INVITE or UPDATE) that negotiated a session interval.
func (n *Node) refreshed(ctx context.Context, callID string, req *sip.Request, res *sip.Response) {
	se := sessionExpires(res)
	if se == 0 {
		se = sessionExpires(req)
	}
	if se == 0 {
		return // no session timer: the call keeps its maximum
	}
	if _, err := n.deps.Store.SIPCallUpdate(ctx, store.SIPCall{CallID: callID, SessionExpires: int(se / time.Second), Deadline: n.deadline(n.now(), se)}, ""); err != nil {
		n.log.Warn("sip: a session refresh was not recorded", "call_id", callID, "err", err)
	}
}

// outOfDialog routes a request outside a dialog other than INVITE,
// REGISTER and OPTIONS (MESSAGE, SUBSCRIBE, ...): authenticated, then
// relayed to the called user's preferred contact.
func (n *Node) outOfDialog(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) {
	loop, ok := n.checkForward(ctx, req, tx)
	if !ok {
		return
	}
	user, ok := n.authenticate(ctx, req, tx)
	if !ok {
		return
	}
	if user != req.From().Address.User {
		n.respond(ctx, tx, req, sip.StatusForbidden, "From Is Not The Authenticated User")
		return
	}
	bindings, err := n.deps.Store.SIPBindings(ctx, req.Recipient.User, n.now())
	if err != nil {
		n.respond(ctx, tx, req, sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	for _, b := range bindings {
		var u sip.Uri
		if sip.ParseUri(b.Contact, &u) != nil || u.Host == "" {
			continue
		}
		t := targetOf(u)
		if n.port(t.transport) == 0 {
			continue
		}
		markReceived(req)
		n.relay(ctx, req, tx, t, loop)
		return
	}
	n.respond(ctx, tx, req, sip.StatusNotFound, "Not Found")
}

// relay proxies a request other than INVITE statefully to one target and
// relays its final answer (408 when none comes). It returns that answer.
func (n *Node) relay(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, t target, loop string) *sip.Response {
	out := n.forwarded(req, t, loop, false)
	ctx, cancel := context.WithTimeout(ctx, 64*sip.T1)
	defer cancel()
	btx, err := n.send(ctx, out, t)
	if err != nil {
		return n.relayFailed(ctx, tx, req, sip.StatusServiceUnavailable, "Service Unavailable")
	}
	defer btx.Terminate()
	for {
		select {
		case res := <-btx.Responses():
			n.logMsg(ctx, LogIn, t.addr, res)
			if res.IsProvisional() {
				if res.StatusCode != sip.StatusTrying {
					_ = tx.Respond(upstream(req, res))
				}
				continue
			}
			up := upstream(req, res)
			if err := tx.Respond(up); err != nil {
				n.log.Debug("sip: an answer did not go upstream", "status", up.StatusCode, "err", err)
			} else {
				n.logMsg(ctx, LogOut, up.Destination(), up)
			}
			return res
		case <-btx.Done():
			if err := btx.Err(); err != nil && !errors.Is(err, sip.ErrTransactionTimeout) {
				return n.relayFailed(ctx, tx, req, sip.StatusServiceUnavailable, "Service Unavailable")
			}
			return n.relayFailed(ctx, tx, req, sip.StatusRequestTimeout, "Request Timeout")
		case <-ctx.Done():
			return n.relayFailed(ctx, tx, req, sip.StatusRequestTimeout, "Request Timeout")
		}
	}
}

func (n *Node) relayFailed(ctx context.Context, tx sip.ServerTransaction, req *sip.Request, code int, reason string) *sip.Response {
	n.respond(ctx, tx, req, code, reason)
	return nil
}

// addressedHere reports whether a Request-URI names this node (its
// address) or the platform's SIP domain.
func (n *Node) addressedHere(u sip.Uri) bool {
	return n.isSelf(u.Host, u.Port) || strings.EqualFold(strings.Trim(u.Host, "[]"), n.opts.Domain)
}

// byeOffRoute takes a BYE sent to this node without the route its
// dialog recorded: a user agent that lost the route set, as sipp does
// when it abandons a call (its BYE goes to the address it called, with no
// Route). A call the platform has in progress is ended there, as any BYE
// ends it, and the BYE goes on to the other party, found in the call's
// record; anything else, or a BYE whose tags name no dialog of the call,
// is no call of this platform's (481).
func (n *Node) byeOffRoute(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) {
	callID := req.CallID().Value()
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		n.respond(ctx, tx, req, sip.StatusTooManyHops, "Too Many Hops")
		return
	}
	c, first, err := n.endBye(ctx, req)
	switch {
	case errors.Is(err, store.ErrNoSuchDialog):
		n.respond(ctx, tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	case err != nil:
		n.respond(ctx, tx, req, sip.StatusServiceUnavailable, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
		return
	case !first:
		n.respond(ctx, tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	// The other party: the callee for the caller's BYE, else the caller.
	contact, addr, transport := c.CalleeContact, c.CalleeAddr, c.CalleeTransport
	if tagOf(req.From().Params) != c.FromTag {
		contact, addr, transport = c.CallerContact, c.CallerAddr, c.CallerTransport
	}
	var u sip.Uri
	if contact == "" || sip.ParseUri(contact, &u) != nil || u.Host == "" {
		// Nobody to tell: the call is over all the same.
		n.logRoute(ctx, callID, "a BYE off the recorded route: the other party's contact is unknown; answered here")
		n.respond(ctx, tx, req, sip.StatusOK, "OK")
		return
	}
	t := targetOf(u)
	if addr != "" {
		t.addr = addr
	}
	if transport != "" {
		t.transport = transport
	}
	if n.port(t.transport) == 0 {
		n.respond(ctx, tx, req, sip.StatusOK, "OK")
		return
	}
	n.logRoute(ctx, callID, "a BYE off the recorded route: to "+contact)
	markReceived(req)
	n.relay(ctx, req, tx, t, loopHash(req))
}
