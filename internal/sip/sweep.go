package sip

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/convene/convene/internal/store"
)

// sweepBatch is how many calls or addresses of record one sweep takes.
const sweepBatch = 64

// sweepLoop ends the calls whose deadline passed (a BYE nobody sent: the
// session timer, or a call a dead node left ringing) and drops expired
// registrations, every SweepInterval. Every node sweeps; the store hands
// each call to one of them.
func (n *Node) sweepLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.sweep()
		}
	}
}

func (n *Node) sweep() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := n.now()
	for range 16 {
		calls, err := n.deps.Store.SIPCallsExpired(ctx, now, sweepBatch, now.Add(n.opts.ReportGrace))
		if err != nil {
			n.log.Warn("sip: calls past their deadline could not be swept", "err", err)
			break
		}
		for _, c := range calls {
			n.expired(withCallLog(ctx), c)
		}
		if len(calls) < sweepBatch {
			break
		}
	}
	if _, err := n.deps.Store.SIPSweepBindings(ctx, now, sweepBatch); err != nil {
		n.log.Warn("sip: expired registrations could not be swept", "err", err)
	}
	n.loadPeers(ctx)
}

// expired reports a call past its deadline as ended and, when it was
// answered and this is its first end, hangs up both parties with a BYE
// each. A call ended before whose report was not confirmed (its node
// died) is reported again.
func (n *Node) expired(ctx context.Context, c store.SIPCall) {
	if !c.Again {
		n.logRoute(ctx, c.CallID, "call past its deadline: ended by the session timer")
		if !c.Answer.IsZero() {
			go n.byeBoth(c)
		}
	}
	id := c.CallID
	n.record().CallEnded(ctx, eventFrom(c), func() { n.forget(id) })
}

// byeBoth sends a BYE to each party of an answered call, as the other
// party would: the callee gets the caller's, the caller the callee's.
func (n *Node) byeBoth(c store.SIPCall) {
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	ctx = withCallLog(ctx)
	var from, to sip.Uri
	var fromP, toP sip.HeaderParams
	fromName, err1 := sip.ParseAddressValue(c.FromHeader, &from, &fromP)
	toName, err2 := sip.ParseAddressValue(c.ToHeader, &to, &toP)
	if err1 != nil || err2 != nil {
		n.log.Warn("sip: an expired call's parties could not be read; no BYE sent", "call_id", c.CallID)
		return
	}
	caller := &sip.FromHeader{DisplayName: fromName, Address: from, Params: fromP}
	callee := &sip.ToHeader{DisplayName: toName, Address: to, Params: toP}
	legs := []struct {
		contact, addr, transport string
		from                     *sip.FromHeader
		to                       *sip.ToHeader
		seq                      uint32
	}{
		{c.CalleeContact, c.CalleeAddr, c.CalleeTransport, caller, callee, c.CallerCSeq + 1000},
		{c.CallerContact, c.CallerAddr, c.CallerTransport, &sip.FromHeader{DisplayName: toName, Address: to, Params: toP},
			&sip.ToHeader{DisplayName: fromName, Address: from, Params: fromP}, uint32(time.Now().Unix() & 0x7fffffff)},
	}
	done := make(chan struct{}, len(legs))
	for _, l := range legs {
		var ru sip.Uri
		if l.contact == "" || sip.ParseUri(l.contact, &ru) != nil || ru.Host == "" {
			done <- struct{}{}
			continue
		}
		t := targetOf(ru)
		if l.addr != "" {
			t.addr = l.addr
		}
		if l.transport != "" {
			t.transport = l.transport
		}
		if n.port(t.transport) == 0 {
			done <- struct{}{}
			continue
		}
		bye := sip.NewRequest(sip.BYE, ru)
		bye.AppendHeader(n.via(t.transport, randomPart()))
		mf := sip.MaxForwardsHeader(70)
		bye.AppendHeader(&mf)
		bye.AppendHeader(l.from)
		bye.AppendHeader(l.to)
		cid := sip.CallIDHeader(c.CallID)
		bye.AppendHeader(&cid)
		bye.AppendHeader(&sip.CSeqHeader{SeqNo: l.seq, MethodName: sip.BYE})
		bye.AppendHeader(sip.NewHeader("Reason", `SIP;cause=408;text="session expired"`))
		bye.SetBody(nil)
		go func() {
			defer func() { done <- struct{}{} }()
			tx, err := n.send(ctx, bye, t)
			if err != nil {
				return
			}
			defer tx.Terminate()
			select {
			case res := <-tx.Responses():
				n.logMsg(ctx, LogIn, t.addr, res)
			case <-tx.Done():
			case <-ctx.Done():
			}
		}()
	}
	for range legs {
		<-done
	}
}
