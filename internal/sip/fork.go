package sip

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// fork proxies one INVITE statefully (RFC 3261 §16): to every target at
// once (parallel forking), relaying provisional answers, the first 2xx
// and every later one, and otherwise the best final answer once every
// branch has one; cancelling the other branches when one answers, when
// the caller cancels, or when nobody answers within the ring timeout.
type fork struct {
	n    *Node
	req  *sip.Request // as received, Via marked
	tx   sip.ServerTransaction
	loop string
	// hooks of the call: the first 2xx (before it is relayed), the end
	// of the transaction without an answer.
	onAnswer func(ctx context.Context, b *branch, res *sip.Response)
	onFail   func(ctx context.Context, code int, reason string)

	mu        sync.Mutex
	branches  []*branch
	best      *sip.Response
	answered  bool   // a 2xx went upstream
	final     bool   // a final answer went upstream
	cancelled bool   // the caller cancelled, or the ring timeout passed
	why       string // EndCancel or EndNoAnswer, when cancelled
	done      chan struct{}
	open      int // branches still waiting for a final answer
}

type branch struct {
	req         *sip.Request
	t           target
	tx          sip.ClientTransaction
	provisional bool // a provisional answer arrived: it can be cancelled
	cancelSent  bool
	finished    bool
}

// run forwards to targets and waits until the transaction upstream has
// its final answer and every branch ended.
func (f *fork) run(ctx context.Context, targets []target, recordRoute bool) {
	f.done = make(chan struct{})
	for _, t := range targets {
		out := f.n.forwarded(f.req, t, f.loop, recordRoute)
		b := &branch{req: out, t: t}
		f.branches = append(f.branches, b)
	}
	f.tx.OnCancel(func(*sip.Request) { go f.cancelAll(ctx, EndCancel) })
	f.mu.Lock()
	f.open = len(f.branches)
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, b := range f.branches {
		tx, err := f.n.send(ctx, b.req, b.t)
		if err != nil {
			f.n.log.Debug("sip: a branch could not be sent", "to", b.t.addr, "err", err)
			f.onResponse(ctx, b, f.synthetic(b, sip.StatusServiceUnavailable, "Service Unavailable"))
			continue
		}
		tx.OnRetransmission(f.n.strayResponse) // a 2xx sent again goes upstream again
		f.mu.Lock()
		b.tx = tx
		f.mu.Unlock()
		wg.Add(1)
		go func() { defer wg.Done(); f.watch(ctx, b) }()
	}
	ring := time.AfterFunc(f.n.opts.RingTimeout, func() { f.cancelAll(ctx, EndNoAnswer) })
	defer ring.Stop()
	wg.Wait()
	f.mu.Lock()
	if !f.final {
		f.finishLocked(ctx)
	}
	f.mu.Unlock()
}

// watch reads a branch's responses until its transaction ends.
func (f *fork) watch(ctx context.Context, b *branch) {
	for {
		select {
		case res, ok := <-b.tx.Responses():
			if !ok {
				return
			}
			f.onResponse(ctx, b, res)
			if !res.IsProvisional() {
				return
			}
		case <-b.tx.Done():
			code, reason := sip.StatusRequestTimeout, "Request Timeout"
			if err := b.tx.Err(); err != nil && !errors.Is(err, sip.ErrTransactionTimeout) {
				code, reason = sip.StatusServiceUnavailable, "Service Unavailable"
			}
			f.onResponse(ctx, b, f.synthetic(b, code, reason))
			return
		}
	}
}

// synthetic is a response the node makes for a branch that got none.
func (f *fork) synthetic(b *branch, code int, reason string) *sip.Response {
	return sip.NewResponseFromRequest(b.req, code, reason, nil)
}

func (f *fork) onResponse(ctx context.Context, b *branch, res *sip.Response) {
	f.n.logMsg(ctx, LogIn, b.t.addr, res)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case res.StatusCode == sip.StatusTrying:
		return
	case res.IsProvisional():
		b.provisional = true
		if f.cancelled || f.answered {
			f.cancelLocked(b)
			return
		}
		if !f.final {
			f.relayLocked(ctx, res)
		}
		return
	}
	if b.finished {
		return
	}
	b.finished = true
	f.open--
	if res.IsSuccess() {
		if f.final && !f.answered {
			// A 2xx after the caller was told otherwise (a CANCEL
			// crossed it, or the ring timeout passed): that party's
			// dialog has nobody at the other end.
			go f.n.hangUp(b, res)
			return
		}
		first := !f.answered
		f.answered, f.final = true, true
		if first && f.onAnswer != nil {
			f.onAnswer(ctx, b, res)
		}
		f.relayLocked(ctx, res)
		if first {
			for _, o := range f.branches {
				if o != b {
					f.cancelLocked(o)
				}
			}
		}
		return
	}
	if f.best == nil || better(res, f.best) {
		f.best = res
	}
	if res.StatusCode >= 600 && !f.final {
		for _, o := range f.branches {
			f.cancelLocked(o)
		}
		f.finishLocked(ctx)
		return
	}
	if f.open == 0 && !f.final {
		f.finishLocked(ctx)
	}
}

// better reports whether a final answer beats the best so far (RFC 3261
// §16.7 step 6): a 6xx, then the lowest class, 4xx before 5xx.
func better(a, best *sip.Response) bool {
	ca, cb := a.StatusCode/100, best.StatusCode/100
	if cb == 6 {
		return false
	}
	if ca == 6 {
		return true
	}
	return ca < cb
}

// finishLocked gives the caller its final answer when no branch
// answered 2xx: nothing more when it cancelled (its transaction answered
// 487 itself), 408 when nobody answered in time, else the best final
// answer of the branches.
func (f *fork) finishLocked(ctx context.Context) {
	f.final = true
	code, reason := 0, EndRejected
	switch {
	case f.why == EndCancel:
		code, reason = sip.StatusRequestTerminated, EndCancel
	case f.why == EndNoAnswer || f.best == nil:
		code, reason = sip.StatusRequestTimeout, EndNoAnswer
		f.respondLocked(ctx, sip.NewResponseFromRequest(f.req, code, "Request Timeout", nil))
	case f.best.StatusCode == sip.StatusServiceUnavailable:
		code = sip.StatusInternalServerError // §16.7 step 6: a 503 is not passed on
		f.respondLocked(ctx, sip.NewResponseFromRequest(f.req, code, "Server Internal Error", nil))
	default:
		code = f.best.StatusCode
		if code == sip.StatusRequestTimeout {
			reason = EndNoAnswer
		}
		f.relayLocked(ctx, f.best)
	}
	if f.onFail != nil {
		f.onFail(ctx, code, reason)
	}
}

// relayLocked sends a branch's answer upstream.
func (f *fork) relayLocked(ctx context.Context, res *sip.Response) {
	f.respondLocked(ctx, upstream(f.req, res))
}

func (f *fork) respondLocked(ctx context.Context, res *sip.Response) {
	if err := f.tx.Respond(res); err != nil {
		f.n.log.Debug("sip: an answer did not go upstream", "status", res.StatusCode, "err", err)
		return
	}
	f.n.logMsg(ctx, LogOut, res.Destination(), res)
}

// cancelAll ends the INVITE without an answer: the caller cancelled (why
// EndCancel) or nobody answered in time (EndNoAnswer). Branches that rang
// are cancelled; those that did not are abandoned.
func (f *fork) cancelAll(ctx context.Context, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.final {
		return
	}
	f.cancelled, f.why = true, why
	for _, b := range f.branches {
		switch {
		case b.finished || b.tx == nil:
		case b.provisional:
			f.cancelLocked(b)
		default:
			b.tx.Terminate()
		}
	}
	f.finishLocked(ctx)
}

// cancelLocked sends CANCEL on a branch that has had a provisional answer
// and no final one; one that has not had any is cancelled when it does
// (RFC 3261 §9.1).
func (f *fork) cancelLocked(b *branch) {
	if b.finished || b.cancelSent || !b.provisional || b.tx == nil {
		return
	}
	b.cancelSent = true
	c := cancelOf(b.req)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
		defer cancel()
		tx, err := f.n.send(ctx, c, b.t)
		if err != nil {
			return
		}
		defer tx.Terminate()
		select {
		case <-tx.Responses():
		case <-tx.Done():
		case <-ctx.Done():
		}
	}()
}

// cancelOf is the CANCEL of a forwarded INVITE (RFC 3261 §9.1): its
// Request-URI, top Via, Route, From, To, Call-ID and CSeq number.
func cancelOf(inv *sip.Request) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, inv.Recipient)
	c.AppendHeader(sip.HeaderClone(inv.Via()))
	for _, r := range inv.GetHeaders("Route") {
		c.AppendHeader(sip.HeaderClone(r))
	}
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	c.SetBody(nil)
	return c
}

// forwarded is the copy of req the node sends to t: its Request-URI, one
// hop fewer, the node's credentials consumed, the node's Record-Route
// (two when the transport changes, RFC 5658) and the node's Via on top.
func (n *Node) forwarded(req *sip.Request, t target, loop string, recordRoute bool) *sip.Request {
	out := req.Clone()
	out.Recipient = *t.uri.Clone()
	decMaxForwards(out)
	n.dropCredentials(out)
	if recordRoute {
		in := req.Transport()
		if !sameTransport(in, t.transport) && n.port(in) != 0 {
			out.PrependHeader(n.recordRoute(in))
		}
		out.PrependHeader(n.recordRoute(t.transport))
	}
	out.PrependHeader(n.via(t.transport, loop))
	return out
}

func sameTransport(a, b string) bool { return sip.NetworkToUpper(a) == sip.NetworkToUpper(b) }

// hangUp ends the dialog a 2xx set up that nobody will use: ACK, then BYE.
func (n *Node) hangUp(b *branch, res *sip.Response) {
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	to := res.To()
	if to == nil {
		return
	}
	dest := b.t
	if c := res.Contact(); c != nil {
		dest = targetOf(c.Address)
	}
	for i, m := range []sip.RequestMethod{sip.ACK, sip.BYE} {
		r := sip.NewRequest(m, dest.uri)
		r.AppendHeader(n.via(dest.transport, "x"+strconv.Itoa(i)))
		mf := sip.MaxForwardsHeader(70)
		r.AppendHeader(&mf)
		r.AppendHeader(sip.HeaderClone(b.req.From()))
		r.AppendHeader(sip.HeaderClone(to))
		r.AppendHeader(sip.HeaderClone(b.req.CallID()))
		seq := b.req.CSeq().SeqNo
		if m == sip.BYE {
			seq++
		}
		r.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: m})
		if m == sip.ACK {
			_ = n.sendStateless(ctx, r, dest)
			continue
		}
		if tx, err := n.send(ctx, r, dest); err == nil {
			select {
			case <-tx.Responses():
			case <-tx.Done():
			case <-ctx.Done():
			}
			tx.Terminate()
		}
	}
}
