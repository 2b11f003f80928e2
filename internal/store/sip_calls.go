package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// SIPCall is one call the SIP edge routes, as the platform's SIP nodes
// share it (lua/sip_call.lua): who called whom, when it started, was
// answered and must end, and what a node needs to end it (both parties'
// contacts and where they are reached).
type SIPCall struct {
	CallID   string
	FromTag  string
	ToTag    string
	Caller   string
	Called   string
	E164     string // the conference called, if any
	Media    string // "voice" or "video"
	Node     string // the SIP node that routed the INVITE
	Platform string

	Start  time.Time
	Answer time.Time // zero: not answered
	End    time.Time
	// Status is the final status of the INVITE (0: none yet); Reason why
	// the call ended ("bye", "cancel", "rejected", "session-expired", ...).
	Status int
	Reason string
	// Deadline is when the call is over unless refreshed; SessionExpires
	// the session interval of RFC 4028 in seconds (0: none negotiated).
	Deadline       time.Time
	SessionExpires int

	// The two parties, as the node that routed the call saw them: their
	// From and To header values (with tags), contact URIs, the addresses
	// and transports they are reached at, and the caller's CSeq.
	FromHeader      string
	ToHeader        string
	CallerContact   string
	CallerAddr      string
	CallerTransport string
	CalleeContact   string
	CalleeAddr      string
	CalleeTransport string
	CallerCSeq      uint32

	// Again (from SIPCallsExpired) says the call was ended before and its
	// end reported, maybe, by a node that did not confirm it: report it
	// again, send nothing.
	Again bool
}

// SIP call outcomes of the update scripts.
const (
	// SIPCallUpdated: the fields were set.
	SIPCallUpdated = "updated"
	// SIPCallSkipped: the guard field was set already (an answer after
	// the first).
	SIPCallSkipped = "skipped"
	// SIPCallAbsent: no such call (ended already, or never recorded).
	SIPCallAbsent = "absent"
)

func sipCallKey(id string) string { return "sip/call/" + id }

// fields lists the call's non-empty fields as field, value pairs.
func (c SIPCall) fields() []any {
	var out []any
	add := func(k, v string) {
		if v != "" {
			out = append(out, k, v)
		}
	}
	ms := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	num := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	add("ftag", c.FromTag)
	add("ttag", c.ToTag)
	add("caller", c.Caller)
	add("called", c.Called)
	add("e164", c.E164)
	add("media", c.Media)
	add("node", c.Node)
	add("platform", c.Platform)
	add("start", ms(c.Start))
	add("answer", ms(c.Answer))
	add("end", ms(c.End))
	add("status", num(int64(c.Status)))
	add("reason", c.Reason)
	add("se", num(int64(c.SessionExpires)))
	add("from", c.FromHeader)
	add("to", c.ToHeader)
	add("caller_contact", c.CallerContact)
	add("caller_addr", c.CallerAddr)
	add("caller_tp", c.CallerTransport)
	add("callee_contact", c.CalleeContact)
	add("callee_addr", c.CalleeAddr)
	add("callee_tp", c.CalleeTransport)
	add("caller_cseq", num(int64(c.CallerCSeq)))
	return out
}

// sipCallFrom reads a call back from its flattened fields.
func sipCallFrom(id string, kv []any) SIPCall {
	c := SIPCall{CallID: id}
	for i := 0; i+1 < len(kv); i += 2 {
		k, v := str(kv[i]), str(kv[i+1])
		n, _ := strconv.ParseInt(v, 10, 64)
		t := time.Time{}
		if n > 0 {
			t = time.UnixMilli(n)
		}
		switch k {
		case "ftag":
			c.FromTag = v
		case "ttag":
			c.ToTag = v
		case "caller":
			c.Caller = v
		case "called":
			c.Called = v
		case "e164":
			c.E164 = v
		case "media":
			c.Media = v
		case "node":
			c.Node = v
		case "platform":
			c.Platform = v
		case "start":
			c.Start = t
		case "answer":
			c.Answer = t
		case "end":
			c.End = t
		case "status":
			c.Status = int(n)
		case "reason":
			c.Reason = v
		case "se":
			c.SessionExpires = int(n)
		case "from":
			c.FromHeader = v
		case "to":
			c.ToHeader = v
		case "caller_contact":
			c.CallerContact = v
		case "caller_addr":
			c.CallerAddr = v
		case "caller_tp":
			c.CallerTransport = v
		case "callee_contact":
			c.CalleeContact = v
		case "callee_addr":
			c.CalleeAddr = v
		case "callee_tp":
			c.CalleeTransport = v
		case "caller_cseq":
			c.CallerCSeq = uint32(n)
		}
	}
	return c
}

// SIPCallStart records a new call with its deadline. A call already
// recorded (the INVITE seen again) is left as it is: created is false.
func (s *Store) SIPCallStart(ctx context.Context, c SIPCall) (created bool, err error) {
	if c.CallID == "" || c.Deadline.IsZero() {
		return false, errors.New("store: a call needs its Call-ID and a deadline")
	}
	args := append([]any{"start", c.CallID, c.Deadline.UnixMilli()}, c.fields()...)
	res, err := s.run(ctx, sipCallScript, "", args...)
	if err != nil {
		return false, err
	}
	return res.str(1) == "created", nil
}

// SIPCallUpdate sets the non-empty fields of c on the recorded call
// c.CallID, and its deadline when c.Deadline is set, unless the call's
// field unless ("answer", "ttag", ...; "" for none) is set already. It
// returns SIPCallUpdated, SIPCallSkipped or SIPCallAbsent.
func (s *Store) SIPCallUpdate(ctx context.Context, c SIPCall, unless string) (string, error) {
	deadline := ""
	if !c.Deadline.IsZero() {
		deadline = strconv.FormatInt(c.Deadline.UnixMilli(), 10)
	}
	args := append([]any{"update", c.CallID, unless, deadline}, c.fields()...)
	res, err := s.run(ctx, sipCallScript, "", args...)
	if err != nil {
		return "", err
	}
	return res.str(1), nil
}

// SIPCallEnd ends call id with the non-empty fields of with (its end
// time, reason, status), and returns the call as recorded, with them.
// Only the first end of a call finds it: first is false after that, and
// for a call never recorded. The ended call is kept until until, for the
// node to report its end and then forget it (SIPCallsForget); a call not
// forgotten by then is handed out again by SIPCallsExpired.
func (s *Store) SIPCallEnd(ctx context.Context, id string, with SIPCall, until time.Time) (c SIPCall, first bool, err error) {
	return s.sipCallEnd(ctx, id, "", "", with, until)
}

// SIPCallEndDialog ends call id as SIPCallEnd does, for a request of one
// of its dialogs (a BYE) whose From and To tags are fromTag and toTag:
// the caller's dialog (the call's from-tag, then its to-tag) or the
// callee's (the other way round); before the answer the call has no
// to-tag and the caller's from-tag is enough. Tags that name no dialog
// of the call end nothing: ErrNoSuchDialog, so whoever learns a Call-ID
// cannot end a call it is not in.
func (s *Store) SIPCallEndDialog(ctx context.Context, id, fromTag, toTag string, with SIPCall, until time.Time) (c SIPCall, first bool, err error) {
	if fromTag == "" {
		return SIPCall{}, false, ErrNoSuchDialog
	}
	return s.sipCallEnd(ctx, id, fromTag, toTag, with, until)
}

func (s *Store) sipCallEnd(ctx context.Context, id, fromTag, toTag string, with SIPCall, until time.Time) (SIPCall, bool, error) {
	args := append([]any{"end", id, until.UnixMilli(), fromTag, toTag}, with.fields()...)
	res, err := s.run(ctx, sipCallScript, "", args...)
	if err != nil {
		return SIPCall{}, false, err
	}
	switch res.str(1) {
	case "mismatch":
		return SIPCall{}, false, ErrNoSuchDialog
	case "ended":
		if len(res) >= 3 {
			kv, _ := res[2].([]any)
			return sipCallFrom(id, kv), true, nil
		}
	}
	return SIPCall{}, false, nil
}

// SIPCallsForget drops ended calls whose end was reported. Safe to repeat.
func (s *Store) SIPCallsForget(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, "forget")
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := s.run(ctx, sipCallScript, "", args...)
	return err
}

// SIPCallsExpired takes up to limit calls whose deadline passed at now: a
// call in progress is ended there (reason "session-expired" if answered,
// "no-answer" with status 408 if not); a call ended before and never
// forgotten comes back with Again set. Each is kept until until, for the
// caller to report and forget it. A call is handed to one caller at a
// time, whichever node asks first.
func (s *Store) SIPCallsExpired(ctx context.Context, now time.Time, limit int, until time.Time) ([]SIPCall, error) {
	res, err := s.run(ctx, sipCallScript, "", "expire", now.UnixMilli(), limit, until.UnixMilli(), now.UnixMilli())
	if err != nil {
		return nil, err
	}
	var out []SIPCall
	for _, v := range res[1:] {
		kv, ok := v.([]any)
		if !ok || len(kv) < 2 {
			continue
		}
		c := sipCallFrom(str(kv[0]), kv[2:])
		c.Again = str(kv[1]) == "again"
		out = append(out, c)
	}
	return out, nil
}

// SIPCall reads a recorded call; ok is false when there is none.
func (s *Store) SIPCall(ctx context.Context, id string) (c SIPCall, ok bool, err error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	m, err := s.rdb.HGetAll(ctx, sipCallKey(id)).Result()
	if err != nil {
		return SIPCall{}, false, fmt.Errorf("store: %w", err)
	}
	if len(m) == 0 {
		return SIPCall{}, false, nil
	}
	kv := make([]any, 0, 2*len(m))
	for k, v := range m {
		kv = append(kv, k, v)
	}
	c = sipCallFrom(id, kv)
	if d, err := s.rdb.ZScore(ctx, "sip/calls/deadline", id).Result(); err == nil {
		c.Deadline = time.UnixMilli(int64(d))
	}
	return c, true, nil
}

// SIPCallCount is how many calls are recorded (in progress).
func (s *Store) SIPCallCount(ctx context.Context) (int64, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := s.rdb.ZCard(ctx, "sip/calls/deadline").Result()
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return n, nil
}
