package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
)

// The event stream: GET /v1/events asked with Accept: text/event-stream
// follows the platform as it changes, one server-sent event per
// notification heard on the bus (conferences, nodes, rooms, platforms,
// licences, live calls, alarms), so that a page follows without polling.
// Asked without that header, GET /v1/events answers the JSON list of the
// CM's notifications (cm.go), as before.
//
// Each event is
//
//	id: <n, increasing across the stream>
//	event: <kind>
//	data: <the notification as published on the bus, one JSON line>
//
// A client that falls more than its buffer behind is dropped (its
// stream ends): the bus handler never waits for a client.

const (
	// streamHeartbeat is how often an idle stream gets a comment line,
	// so that proxies and clients see it alive.
	streamHeartbeat = 15 * time.Second
	// streamBuffer is the events a client may fall behind by.
	streamBuffer = 1024
	// streamWriteTimeout bounds one write to a client; a client that
	// takes no bytes for that long is gone.
	streamWriteTimeout = 10 * time.Second
	// maxStreamTypes bounds the kinds a types= filter names.
	maxStreamTypes = 32
)

// streamSource is a subject the stream follows and the kind of its
// events. A family's notifications that carry their own kind ("kind":
// "call.started") keep it.
type streamSource struct {
	subject string
	kind    string
	family  string // non-empty: a payload kind "<family>.<x>" is passed through
}

func (s *Server) streamSources() []streamSource {
	p := s.opts.Platform
	return []streamSource{
		{subject: protocol.SubjectCMNotifications, kind: "conference.changed"},
		{subject: protocol.SubjectRMSNotify(p), kind: "node.changed"},
		{subject: protocol.SubjectServerRoomNotify, kind: "room.changed"},
		{subject: protocol.SubjectPlatformNotify, kind: "platform.changed"},
		{subject: protocol.SubjectLicenseNotify, kind: "licence.changed"},
		{subject: protocol.SubjectCallNotify(p), kind: "call.changed", family: "call"},
		{subject: protocol.SubjectAlarmNotify(p), kind: "alarm.changed", family: "alarm"},
	}
}

// startStream subscribes the stream to its sources.
func (s *Server) startStream() ([]*bus.Subscription, error) {
	var subs []*bus.Subscription
	for _, src := range s.streamSources() {
		sb, err := s.bus.Subscribe(src.subject, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
			if s.stream.idle() {
				return
			}
			s.stream.publish(src.eventOf(m.Data))
		}))
		if err != nil {
			for _, done := range subs {
				_ = done.Unsubscribe()
			}
			return nil, fmt.Errorf("api: event stream: %w", err)
		}
		subs = append(subs, sb)
	}
	return subs, nil
}

// announceCreated tells the stream's clients of a conference this API
// created: the scheduler tells the CM of a conference's changes and end
// on meeting.mccntf, not of its creation. The event is the state
// notification a change would carry.
func (s *Server) announceCreated(c *protocol.Conference) {
	if s.stream.idle() {
		return
	}
	data, err := json.Marshal(protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: c.E164, Domain: c.Domain,
		State: c.State, Node: c.Node, Reason: "created"})
	if err != nil {
		return
	}
	s.stream.publish("conference.changed", data)
}

// eventOf makes the event of a notification: its kind, and its JSON on
// one line (a payload that is not JSON is sent as a JSON string).
func (src streamSource) eventOf(data []byte) (string, []byte) {
	var line bytes.Buffer
	if err := json.Compact(&line, data); err != nil {
		b, _ := json.Marshal(string(data))
		return src.kind, b
	}
	kind := src.kind
	if src.family != "" {
		var k struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal(data, &k) == nil && strings.HasPrefix(k.Kind, src.family+".") && validKind(k.Kind) {
			kind = k.Kind
		}
	}
	return kind, line.Bytes()
}

// validKind reports whether s can name an event: 1 to 64 lower-case
// letters, digits, '.', '_' or '-'.
func validKind(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// streamEvent is one event of the stream.
type streamEvent struct {
	id   uint64
	kind string
	data []byte
}

// streamSub is one client's subscription.
type streamSub struct {
	c     chan streamEvent
	types []string // empty: every kind
	done  chan struct{}
	// slow is set, before done is closed, when the client fell behind.
	slow bool
}

// wants reports whether the subscriber asked for events of kind: a kind
// it named, or a family it named ("call" for call.started, call.ended...).
func (sub *streamSub) wants(kind string) bool {
	if len(sub.types) == 0 {
		return true
	}
	for _, t := range sub.types {
		if t == kind || strings.HasPrefix(kind, t+".") {
			return true
		}
	}
	return false
}

// streamHub fans events out to the streams' subscribers without ever
// waiting for one.
type streamHub struct {
	mu      sync.Mutex
	subs    map[*streamSub]struct{}
	last    uint64 // the id of the last event
	closed  bool
	dropped uint64 // subscribers dropped for falling behind
	// open is len(subs), read without mu: with no stream open, the bus
	// handlers and the create path do no work for the stream.
	open atomic.Int64
}

// idle reports whether no stream is open.
func (h *streamHub) idle() bool { return h.open.Load() == 0 }

func newStreamHub() *streamHub { return &streamHub{subs: map[*streamSub]struct{}{}} }

// subscribe adds a subscriber; nil once the hub is closed.
func (h *streamHub) subscribe(types []string, buffer int) *streamSub {
	sub := &streamSub{c: make(chan streamEvent, buffer), types: types, done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.subs[sub] = struct{}{}
	h.open.Add(1)
	return sub
}

// unsubscribe removes a subscriber (again is harmless).
func (h *streamHub) unsubscribe(sub *streamSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.remove(sub)
}

// remove ends sub; mu is held.
func (h *streamHub) remove(sub *streamSub) {
	if _, ok := h.subs[sub]; ok {
		delete(h.subs, sub)
		h.open.Add(-1)
		close(sub.done)
	}
}

// publish gives an event its id and hands it to every subscriber that
// wants it; one whose buffer is full is dropped.
func (h *streamHub) publish(kind string, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.last++
	ev := streamEvent{id: h.last, kind: kind, data: data}
	for sub := range h.subs {
		if !sub.wants(kind) {
			continue
		}
		select {
		case sub.c <- ev:
		default:
			sub.slow = true
			h.dropped++
			h.remove(sub)
		}
	}
}

// close ends every stream and refuses new ones.
func (h *streamHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		h.remove(sub)
	}
}

// count is how many streams are open.
func (h *streamHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// getEvents answers GET /v1/events: the stream when the client accepts
// text/event-stream, else the JSON list of the CM's notifications.
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) *codes.Error {
	if !acceptsEventStream(r) {
		return s.listEvents(w, r)
	}
	return s.streamEvents(w, r)
}

// acceptsEventStream reports whether the Accept header names
// text/event-stream.
func acceptsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && mt == "text/event-stream" {
				return true
			}
		}
	}
	return false
}

// streamTypes reads the types= filter: kinds or families separated by
// commas.
func streamTypes(r *http.Request) ([]string, *codes.Error) {
	q := r.URL.Query()
	for name := range q {
		if name != "types" {
			return nil, httpkit.BadRequest("query parameter %s is not one of the event stream's: use types", httpkit.Echo(name))
		}
	}
	var out []string
	for _, v := range q["types"] {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			if !validKind(t) {
				return nil, httpkit.BadRequest("query parameter \"types\" must list event kinds or families separated by commas (conference.changed, call, alarm.raised...), not %s", httpkit.Echo(t))
			}
			out = append(out, t)
		}
	}
	if len(out) > maxStreamTypes {
		return nil, httpkit.BadRequest("query parameter \"types\" names %d kinds; name at most %d", len(out), maxStreamTypes)
	}
	return out, nil
}

// streamEvents serves the event stream until the client goes, falls
// behind, or the server shuts down.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) *codes.Error {
	types, aerr := streamTypes(r)
	if aerr != nil {
		return aerr
	}
	rc := http.NewResponseController(w)
	sub := s.stream.subscribe(types, s.streamBuffer)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	if sub == nil {
		// Shutting down: the stream ends at once, and the client
		// connects again (to this API once it is back, or another).
		buf.WriteString(": the API is shutting down; connect again\n\n")
		_, _ = w.Write(buf.Bytes())
		return nil
	}
	defer s.stream.unsubscribe(sub)
	// The connection may serve another request after the stream: it must
	// not keep this stream's deadline.
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	send := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := w.Write(buf.Bytes()); err != nil {
			return false
		}
		buf.Reset()
		return rc.Flush() == nil
	}
	buf.WriteString(": convene events\n\n")
	if !send() {
		return nil
	}
	beat := time.NewTicker(s.streamHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-sub.done:
			// Events handed over before the end are still sent.
			drainStream(&buf, sub, -1)
			s.stream.mu.Lock()
			slow := sub.slow
			s.stream.mu.Unlock()
			if slow {
				buf.WriteString(": dropped: the client fell behind; connect again\n\n")
				s.log.Info("api: event stream dropped: the client fell behind", "remote", r.RemoteAddr)
			}
			send()
			return nil
		case ev := <-sub.c:
			writeStreamEvent(&buf, ev)
			// What else is waiting goes in the same write.
			drainStream(&buf, sub, 64<<10)
			if !send() {
				return nil
			}
		case <-beat.C:
			buf.WriteString(": heartbeat\n\n")
			if !send() {
				return nil
			}
		}
	}
}

// writeStreamEvent appends ev in the event stream format.
func writeStreamEvent(buf *bytes.Buffer, ev streamEvent) {
	buf.WriteString("id: ")
	buf.WriteString(strconv.FormatUint(ev.id, 10))
	buf.WriteString("\nevent: ")
	buf.WriteString(ev.kind)
	buf.WriteString("\ndata: ")
	buf.Write(ev.data)
	buf.WriteString("\n\n")
}

// drainStream appends the events waiting for sub, until buf holds limit
// bytes (limit < 0: all of them).
func drainStream(buf *bytes.Buffer, sub *streamSub, limit int) {
	for limit < 0 || buf.Len() < limit {
		select {
		case ev := <-sub.c:
			writeStreamEvent(buf, ev)
		default:
			return
		}
	}
}
