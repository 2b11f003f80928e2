package cdr

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/convene/convene/internal/records"
)

// Call types.
const (
	Voice = records.CallVoice
	Video = records.CallVideo
)

// CallEvent is what the SIP edge knows of a call when it reports a step.
// A call is identified by its Call-ID and from-tag (RecordID), so every
// step of it, from any node, any number of times, lands on one call.
// Fields a step does not know stay zero: each step merges what it knows
// (text keeps its first value, the type its last, times their earliest).
type CallEvent struct {
	CallID  string // the SIP Call-ID: required
	FromTag string
	ToTag   string // the dialog's to-tag, once answered (stored, not part of the identity)
	Caller  string
	Called  string
	Type    string // Voice or Video (from the SDP); "" while unknown (voice at the end)
	Node    string // the SIP node reporting the call
	// Platform is the platform's moid; E164 the conference called, if
	// the call is to one.
	Platform string
	E164     string
	// Start, Answer and End: zero means "now" for the step that sets it
	// (CallStarted's Start, CallAnswered's Answer, CallEnded's End).
	Start, Answer, End time.Time
	// Status is the final SIP status code (CallEnded): 200 for an
	// answered call, 486, 487, 408, ... for one that was not.
	Status int
	// Connected says the call was answered; an Answer time says the same.
	Connected bool
}

// LogLine is one line of a call's (or a conference's) log: a SIP message
// received or sent, or a routing decision.
type LogLine struct {
	Time      time.Time // zero: now
	Level     string    // DEBUG, INFO (""), WARN, ERROR
	Node      string
	Direction string // "in", "out", or "" for a decision
	Peer      string // the address the message came from or went to
	E164      string // the conference, for a conference's line
	Message   string
}

// maxText bounds the text fields of an event or a log line's
// identifiers; a message may be longer (a SIP message is a few KB).
const (
	maxText    = 256
	maxMessage = 64 << 10
)

// RecordID is the id of the call with this Call-ID and from-tag: its
// record's, its live call's, in URLs. 24 hex digits of a SHA-256.
func RecordID(callID, fromTag string) string {
	h := sha256.Sum256([]byte(callID + "\x00" + fromTag))
	return hex.EncodeToString(h[:12])
}

// validID reports whether s has the form of a RecordID.
func validID(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func (e CallEvent) check() error {
	if e.CallID == "" {
		return fmt.Errorf("%w: no Call-ID", ErrInvalidEvent)
	}
	if e.Type != "" && e.Type != Voice && e.Type != Video {
		return fmt.Errorf("%w: call %s: type %q: a call is %q or %q", ErrInvalidEvent, e.CallID, e.Type, Voice, Video)
	}
	if e.Status != 0 && (e.Status < 100 || e.Status > 699) {
		return fmt.Errorf("%w: call %s: status %d is not a SIP status code", ErrInvalidEvent, e.CallID, e.Status)
	}
	for _, f := range []struct{ name, v string }{
		{"Call-ID", e.CallID}, {"from-tag", e.FromTag}, {"to-tag", e.ToTag}, {"caller", e.Caller}, {"called", e.Called},
		{"node", e.Node}, {"platform", e.Platform}, {"e164", e.E164},
	} {
		if err := checkText(f.v, maxText); err != nil {
			return fmt.Errorf("%w: call %.64q: %s %w", ErrInvalidEvent, e.CallID, f.name, err)
		}
	}
	return nil
}

// checkText refuses what PostgreSQL and SQLite would not store alike.
func checkText(v string, max int) error {
	switch {
	case len(v) > max:
		return fmt.Errorf("is %d bytes long, over %d", len(v), max)
	case !utf8.ValidString(v):
		return fmt.Errorf("is not UTF-8")
	case strings.IndexByte(v, 0) >= 0:
		return fmt.Errorf("holds a NUL byte")
	}
	return nil
}

// step turns an event into a records step of kind k, times kept to the
// millisecond; now fills the time the step sets.
func (e CallEvent) step(k records.CallStepKind, now time.Time) records.CallStep {
	c := records.Call{
		ID: RecordID(e.CallID, e.FromTag), CallID: e.CallID, FromTag: e.FromTag, ToTag: e.ToTag,
		Caller: e.Caller, Called: e.Called, Type: e.Type, Connected: e.Connected,
		Start: e.Start, Answer: e.Answer, End: e.End, Status: e.Status,
		Node: e.Node, Platform: e.Platform, E164: e.E164,
	}
	switch k {
	case records.CallStart:
		if c.Start.IsZero() {
			c.Start = now
		}
		c.End = time.Time{}
	case records.CallAnswer:
		if c.Answer.IsZero() {
			c.Answer = now
		}
		c.Connected, c.End = true, time.Time{}
	case records.CallEnd:
		if c.End.IsZero() {
			c.End = now
		}
	}
	for _, t := range []*time.Time{&c.Start, &c.Answer, &c.End} {
		*t = t.Truncate(time.Millisecond)
	}
	return records.CallStep{Kind: k, Call: c}
}

func (l LogLine) check() error {
	if l.Message == "" {
		return fmt.Errorf("%w: a log line needs its message", ErrInvalidEvent)
	}
	switch l.Level {
	case "", "DEBUG", "INFO", "WARN", "ERROR":
	default:
		return fmt.Errorf("%w: log level %.32q: use DEBUG, INFO, WARN or ERROR", ErrInvalidEvent, l.Level)
	}
	switch l.Direction {
	case "", "in", "out":
	default:
		return fmt.Errorf("%w: log direction %.32q: use in, out, or nothing for a decision", ErrInvalidEvent, l.Direction)
	}
	for _, f := range []struct{ name, v string }{{"node", l.Node}, {"peer", l.Peer}, {"e164", l.E164}} {
		if err := checkText(f.v, maxText); err != nil {
			return fmt.Errorf("%w: log line: %s %w", ErrInvalidEvent, f.name, err)
		}
	}
	if err := checkText(l.Message, maxMessage); err != nil {
		return fmt.Errorf("%w: log line: message %w", ErrInvalidEvent, err)
	}
	return nil
}

// record turns a log line of the call callID into a records line.
func (l LogLine) record(callID string, now time.Time) records.LogLine {
	at := l.Time
	if at.IsZero() {
		at = now
	}
	var attrs map[string]string
	if l.Direction != "" || l.Peer != "" {
		attrs = map[string]string{}
		if l.Direction != "" {
			attrs["dir"] = l.Direction
		}
		if l.Peer != "" {
			attrs["peer"] = l.Peer
		}
	}
	return records.LogLine{At: at, CallID: callID, E164: l.E164, Level: l.Level, Node: l.Node, Message: l.Message, Attrs: attrs}
}
