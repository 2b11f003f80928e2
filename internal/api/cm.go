package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
)

// The CM agent: what the API does as the seeds' conference manager on the
// bus. It records every notification the scheduler sends the CM, for
// /v1/events, and approves the renames media nodes ask for (000 §5.1).

const (
	eventRingSize     = 10000
	defaultEventLimit = 100
	// cmQueue is the queue group of rename approval: one API instance
	// answers each request however many run.
	cmQueue = "convene-cm"
)

// startAgent subscribes the agent. Every instance records every
// notification; renames are approved by one instance of the queue group.
func (s *Server) startAgent() ([]*bus.Subscription, error) {
	record := bus.HandlerFunc(s.record)
	approvals := bus.NewMux(nil)
	approvals.HandleFunc(protocol.MCUCMModifyConfNameReq, s.approveRename)

	var subs []*bus.Subscription
	for _, sub := range []struct {
		subject string
		h       bus.Handler
		opts    []bus.SubOption
	}{
		{protocol.SubjectCMNotifications, record, nil},
		{protocol.SubjectCMRequests, record, nil},
		{protocol.SubjectCMRequests, approvals, []bus.SubOption{bus.Queue(cmQueue), bus.Concurrent(8)}},
	} {
		sb, err := s.bus.Subscribe(sub.subject, sub.h, sub.opts...)
		if err != nil {
			for _, done := range subs {
				_ = done.Unsubscribe()
			}
			return nil, fmt.Errorf("api: CM agent: %w", err)
		}
		subs = append(subs, sb)
	}
	return subs, nil
}

// record keeps a notification in the ring.
func (s *Server) record(_ context.Context, m *bus.Msg) {
	var ids struct {
		E164     string `json:"e164"`
		ConfE164 string `json:"confE164"`
	}
	_ = json.Unmarshal(m.Data, &ids)
	e164 := ids.E164
	if e164 == "" {
		e164 = ids.ConfE164
	}
	payload := json.RawMessage(append([]byte(nil), m.Data...))
	if !json.Valid(payload) {
		payload, _ = json.Marshal(string(m.Data))
	}
	s.events.add(apiclient.Event{Type: m.Type, E164: e164, Time: time.Now().UTC(), Payload: payload})
}

// approveRename answers a media node's request to rename its conference:
// a name protocol.CheckName accepts (1 to 128 printable characters) is
// approved, anything else refused. The answer goes to the conference's
// control subject, where its scheduler relays it to the node.
func (s *Server) approveRename(_ context.Context, m *bus.Msg) {
	var req protocol.ModifyConfNameReq
	if err := m.Decode(&req); err != nil {
		s.log.Warn("CM: undecodable rename request", "err", err)
		return
	}
	if !protocol.ValidE164(req.E164) {
		s.log.Warn("CM: rename request without a valid number", "e164", req.E164)
		return
	}
	ans := req
	ans.Type, ans.ErrCode = protocol.CMMCUModifyConfNameAck, ""
	if err := protocol.CheckName("confname", req.Name); err != nil {
		ans.Type, ans.ErrCode = protocol.CMMCUModifyConfNameNak, codes.RenameRejected
	}
	if err := s.bus.Publish(protocol.SubjectConfControl(req.E164), ans); err != nil {
		s.log.Warn("CM: rename answer not sent", "e164", req.E164, "err", err)
		return
	}
	s.log.Debug("CM: rename answered", "e164", req.E164, "answer", ans.Type)
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) *codes.Error {
	e164, limit, aerr := eventQuery(r)
	if aerr != nil {
		return aerr
	}
	httpkit.WriteJSON(w, http.StatusOK, apiclient.EventList{Events: s.events.list(e164, limit)})
	return nil
}

// eventQuery reads the filters of GET /v1/events: e164 and limit.
func eventQuery(r *http.Request) (string, int, *codes.Error) {
	q := r.URL.Query()
	e164 := q.Get("e164")
	if e164 != "" && !protocol.ValidE164(e164) {
		return "", 0, httpkit.BadRequest("query parameter \"e164\" must be 3 to 32 digits")
	}
	limit := defaultEventLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > eventRingSize {
			return "", 0, httpkit.BadRequest("query parameter \"limit\" must be between 1 and %d", eventRingSize)
		}
		limit = n
	}
	return e164, limit, nil
}

// ring holds the last events, oldest overwritten first.
type ring struct {
	mu   sync.Mutex
	buf  []apiclient.Event
	next int // where the next event goes
	full bool
}

func newRing(size int) *ring { return &ring{buf: make([]apiclient.Event, size)} }

func (r *ring) add(e apiclient.Event) {
	r.mu.Lock()
	r.buf[r.next] = e
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

// list returns up to limit of the newest events (of one number when e164
// is set), newest last.
func (r *ring) list(e164 string, limit int) []apiclient.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]apiclient.Event, 0, min(limit, n))
	// Walk back from the newest, then reverse.
	for i := 0; i < n && len(out) < limit; i++ {
		e := r.buf[(r.next-1-i+len(r.buf))%len(r.buf)]
		if e164 == "" || e.E164 == e164 {
			out = append(out, e)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
