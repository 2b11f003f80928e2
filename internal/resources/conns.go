package resources

import (
	"context"
	"strings"
	"time"

	"github.com/convene/convene/internal/bus"
)

// NodeConnPrefix starts the name of every media node's bus connection;
// the rest of the name is the node id. The bus binds such a connection to
// its node (bus.NodeConnPrefix).
const NodeConnPrefix = bus.NodeConnPrefix

// NodeConnName is the name a media node gives its bus connection
// (bus.Options Name), by which RMS knows the connection is the node's.
func NodeConnName(id string) string { return NodeConnPrefix + id }

// Connection events, the last token of bus.ConnEventsSubject.
const (
	connEvent    = "CONNECT"
	disconnEvent = "DISCONNECT"
)

// handleConnEvent follows the bus connections of media nodes. Both kinds
// of event arrive on one serial subscription, in the order the server
// sent them; even so, the server may notice an old connection's end after
// the node's new connection started (the node noticed first and
// reconnected), so a client ID older than the newest one seen for the
// node is stale. The server numbers connections in increasing order.
func (s *Service) handleConnEvent(_ context.Context, m *bus.Msg) {
	var ev bus.ConnEvent
	if err := m.Decode(&ev); err != nil {
		s.log.Warn("rms: unreadable connection event", "err", err)
		return
	}
	id, ok := strings.CutPrefix(ev.Client.Name, NodeConnPrefix)
	if !ok || id == "" {
		return
	}
	switch kind := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]; kind {
	case connEvent:
		s.connected(id, ev.Client.ID)
	case disconnEvent:
		s.disconnected(id, ev.Client.ID, ev.Reason, time.Now())
	}
}

// connected notes node id's new connection cid; it ends a grace.
func (s *Service) connected(id string, cid uint64) {
	s.mu.Lock()
	if cid <= s.conns[id] {
		s.mu.Unlock()
		s.log.Debug("rms ignored a stale connection event", "node", id, "client", cid)
		return
	}
	s.conns[id] = cid
	n := s.nodes[id]
	forgiven := n != nil && !n.graceUntil.IsZero()
	if forgiven {
		n.graceUntil = time.Time{}
	}
	s.mu.Unlock()
	if forgiven {
		s.log.Info("media node reconnected to the bus within its grace", "node", id, "client", cid)
	}
}

// disconnected notes that node id's connection cid ended at now: if it is
// the node's newest connection and the node is up, its grace starts.
func (s *Service) disconnected(id string, cid uint64, reason string, now time.Time) {
	s.mu.Lock()
	if cid < s.conns[id] {
		s.mu.Unlock()
		s.log.Debug("rms ignored the end of a replaced connection", "node", id, "client", cid)
		return
	}
	n, known := s.nodes[id]
	if !known {
		delete(s.conns, id) // nothing left to tell apart
		s.mu.Unlock()
		return
	}
	s.conns[id] = cid
	if !n.up || !n.graceUntil.IsZero() {
		s.mu.Unlock()
		return
	}
	n.graceUntil = now.Add(s.opts.DisconnectGrace)
	s.mu.Unlock()
	// The watcher sleeps until the earliest deadline it knew of.
	select {
	case s.rearm <- struct{}{}:
	default:
	}
	s.log.Warn("media node lost its bus connection", "node", id, "client", cid, "reason", reason,
		"grace", s.opts.DisconnectGrace)
}
