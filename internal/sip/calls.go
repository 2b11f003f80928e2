package sip

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/convene/convene/internal/store"
)

// CallRecorder is told of the calls a node routes: each call once
// started, once answered (if it is), once ended, whichever node of the
// platform sees each; and every SIP message in and out of the call, and
// every routing decision, as log lines. Its methods must return quickly
// (queue what they write) and must be idempotent by Call-ID and tags: a
// node that cannot tell whether the platform store recorded an end
// reports it anyway, and an end is reported again until it is written.
//
// CallEnded calls written once the call's record is durably written (from
// any goroutine; it does not block): only then does the node drop the
// call from the platform store. An end never written (the recorder, or
// the node's process, died first) leaves the call there, and a node's
// sweep reports it again once Options.ReportGrace has passed.
type CallRecorder interface {
	CallStarted(ctx context.Context, c CallEvent)
	CallAnswered(ctx context.Context, c CallEvent)
	CallEnded(ctx context.Context, c CallEvent, written func())
	Log(ctx context.Context, callID string, line LogLine)
}

// Media types of a call, from the m= lines of its SDP.
const (
	MediaVoice = "voice"
	MediaVideo = "video"
)

// Why calls end (CallEvent.Reason).
const (
	EndBye            = "bye"             // a party hung up
	EndCancel         = "cancel"          // the caller gave up before an answer
	EndRejected       = "rejected"        // a final answer other than 2xx
	EndNoAnswer       = "no-answer"       // nobody answered in time (408)
	EndSessionExpired = "session-expired" // no BYE: the session timer ended it
	EndUnrouted       = "unrouted"        // the number leads nowhere (404, 480)
)

// CallEvent is a call as the recorder is told of it. Start, Answer and End
// are zero until they happen; Status is the INVITE's final status (0 while
// none).
type CallEvent struct {
	CallID  string
	FromTag string
	ToTag   string
	Caller  string // the From user
	Called  string // the number dialled
	Media   string // MediaVoice or MediaVideo
	// Node is the SIP node that routed the INVITE; E164 the conference
	// called, if any.
	Node     string
	Platform string
	E164     string
	Start    time.Time
	Answer   time.Time
	End      time.Time
	Status   int
	Reason   string
	// Connected: the call was answered.
	Connected bool
}

// Duration is how long the call was connected (0 if never).
func (c CallEvent) Duration() time.Duration {
	if c.Answer.IsZero() || c.End.Before(c.Answer) {
		return 0
	}
	return c.End.Sub(c.Answer)
}

// Directions of a log line.
const (
	LogIn    = "in"    // a message the node received
	LogOut   = "out"   // a message the node sent
	LogRoute = "route" // a decision the node made
)

// LogLine is one line of a call's own log.
type LogLine struct {
	At   time.Time
	Node string
	Dir  string // LogIn, LogOut or LogRoute
	// Peer is the address the message came from or went to ("" for a
	// decision).
	Peer string
	// Text is the message's first line with its Call-ID-free essentials
	// (CSeq, tags), or the decision in words.
	Text string
}

type nopRecorder struct{}

func (nopRecorder) CallStarted(context.Context, CallEvent)  {}
func (nopRecorder) CallAnswered(context.Context, CallEvent) {}
func (nopRecorder) CallEnded(_ context.Context, _ CallEvent, written func()) {
	written()
}
func (nopRecorder) Log(context.Context, string, LogLine) {}

func (n *Node) record() CallRecorder { return n.deps.Recorder }

// logRoute logs a routing decision of a call.
func (n *Node) logRoute(ctx context.Context, callID, text string) {
	n.logLine(ctx, callID, LogRoute, "", text)
}

// callLog marks a context whose messages belong to a call's log: an
// in-dialog request's, or an INVITE's once authenticated (what is sent
// before, challenges and refusals of strangers, is no call's).
type callLog struct{}

func withCallLog(ctx context.Context) context.Context { return context.WithValue(ctx, callLog{}, true) }

func (n *Node) logLine(ctx context.Context, callID, dir, peer, text string) {
	if callID == "" || ctx.Value(callLog{}) == nil {
		return
	}
	n.record().Log(ctx, callID, LogLine{At: n.now(), Node: n.opts.Name, Dir: dir, Peer: peer, Text: text})
}

// logMsg logs a message of a call.
func (n *Node) logMsg(ctx context.Context, dir, peer string, m message) {
	id := ""
	if h := m.CallID(); h != nil {
		id = h.Value()
	}
	n.logLine(ctx, id, dir, peer, summary(m))
}

// summary is a message's first line, CSeq and tags.
func summary(m message) string {
	var b strings.Builder
	b.WriteString(m.StartLine())
	if h := m.CSeq(); h != nil {
		b.WriteString(" (CSeq ")
		b.WriteString(h.Value())
		b.WriteString(")")
	}
	if h := m.From(); h != nil {
		if t, ok := h.Params.Get("tag"); ok {
			b.WriteString(" from-tag=" + t)
		}
	}
	if h := m.To(); h != nil {
		if t, ok := h.Params.Get("tag"); ok {
			b.WriteString(" to-tag=" + t)
		}
	}
	return b.String()
}

func eventFrom(c store.SIPCall) CallEvent {
	return CallEvent{CallID: c.CallID, FromTag: c.FromTag, ToTag: c.ToTag, Caller: c.Caller, Called: c.Called,
		Media: c.Media, Node: c.Node, Platform: c.Platform, E164: c.E164, Start: c.Start, Answer: c.Answer,
		End: c.End, Status: c.Status, Reason: c.Reason, Connected: !c.Answer.IsZero()}
}

// mediaOf reads the call type from an SDP body: video when a video
// stream is offered (port not 0), voice otherwise; "" without SDP.
func mediaOf(body []byte) string {
	if len(body) == 0 || !bytes.Contains(body, []byte("m=")) {
		return ""
	}
	for _, line := range bytes.Split(body, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if !bytes.HasPrefix(line, []byte("m=video ")) {
			continue
		}
		f := bytes.Fields(line[2:])
		if len(f) >= 2 && !bytes.Equal(f[1], []byte("0")) {
			return MediaVideo
		}
	}
	return MediaVoice
}

// sessionExpires reads RFC 4028's Session-Expires (or its compact form
// x) from a message: the interval, 0 when none.
func sessionExpires(m message) time.Duration {
	h := m.GetHeader("Session-Expires")
	if h == nil {
		h = m.GetHeader("x")
	}
	if h == nil {
		return 0
	}
	v, _, _ := strings.Cut(h.Value(), ";")
	s, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// endCall ends a call in the store and tells the recorder, at least once
// for the platform: the store hands the first end to one node, which
// reports it and forgets the call once the recorder wrote it; a node that
// dies in between leaves it to the sweep of another, which reports it
// again after ReportGrace (the recorder is idempotent). with carries the
// end's time, reason and, when known, status. It returns the call as the
// store had it, with first set, when this was its first end.
func (n *Node) endCall(ctx context.Context, callID string, with store.SIPCall) (c store.SIPCall, first bool, err error) {
	c, first, err = n.deps.Store.SIPCallEnd(ctx, callID, with, n.now().Add(n.opts.ReportGrace))
	return n.ended(ctx, callID, with, c, first, err)
}

// endBye ends the call a BYE belongs to, as endCall does, when the BYE's
// tags name one of the call's dialogs (the caller's or the callee's): a
// BYE whose tags do not ends nothing and returns store.ErrNoSuchDialog,
// so knowing a Call-ID is not enough to end a call.
func (n *Node) endBye(ctx context.Context, req *sip.Request) (c store.SIPCall, first bool, err error) {
	callID := req.CallID().Value()
	with := store.SIPCall{End: n.now(), Reason: EndBye}
	c, first, err = n.deps.Store.SIPCallEndDialog(ctx, callID, tagOf(req.From().Params), tagOf(req.To().Params), with, n.now().Add(n.opts.ReportGrace))
	if errors.Is(err, store.ErrNoSuchDialog) {
		n.logRoute(ctx, callID, "a BYE whose tags name no dialog of this call: the call goes on")
		return store.SIPCall{}, false, err
	}
	return n.ended(ctx, callID, with, c, first, err)
}

// ended reports the end of a call the store ended (first), or reports it
// anyway when the store could not be reached.
func (n *Node) ended(ctx context.Context, callID string, with, c store.SIPCall, first bool, err error) (store.SIPCall, bool, error) {
	if err != nil {
		n.log.Warn("sip: a call's end was not recorded in the store; reported anyway", "call_id", callID, "err", err)
		ev := CallEvent{CallID: callID, Node: n.opts.Name, Platform: n.opts.Platform, End: with.End, Reason: with.Reason, Status: with.Status}
		n.record().CallEnded(ctx, ev, func() {})
		return c, false, err
	}
	if !first {
		return c, false, nil
	}
	n.logRoute(ctx, callID, "call ended: "+c.Reason)
	n.record().CallEnded(ctx, eventFrom(c), func() { n.forget(callID) })
	return c, true, nil
}

// forgetBatch bounds the calls one forget drops.
const forgetBatch = 256

// forget queues a reported call to be dropped from the store; the queue
// goes in batches (forgetLoop).
func (n *Node) forget(id string) {
	select {
	case n.forgets <- id:
	default:
		// The queue is full: the sweep reports the call again later.
	}
}

// forgetLoop drops reported calls from the store in batches.
func (n *Node) forgetLoop() {
	defer n.wg.Done()
	batch := make([]string, 0, forgetBatch)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.deps.Store.SIPCallsForget(ctx, batch...); err != nil {
			n.log.Warn("sip: reported calls were not forgotten; they will be reported again", "calls", len(batch), "err", err)
		}
		cancel()
		batch = batch[:0]
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			flush()
			return
		case id := <-n.forgets:
			batch = append(batch, id)
			if len(batch) == forgetBatch {
				flush()
			}
		case <-t.C:
			flush()
		}
	}
}
