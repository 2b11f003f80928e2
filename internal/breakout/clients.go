package breakout

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// WebSocket close codes the service uses.
const (
	statusGoingAway = websocket.StatusGoingAway
	// statusConfEnded closes the clients of a conference that ended.
	statusConfEnded websocket.StatusCode = 4001
	// statusReplaced closes a connection its user replaced with another.
	statusReplaced websocket.StatusCode = 4002
	// statusSlow closes a client that does not read its notifications.
	statusSlow websocket.StatusCode = 4003
)

// fanout is what an instance publishes on bms.<e164> for every instance
// to push to its own clients of the conference: notifications, already
// encoded once in the seed's form, in order; the breakout state's version
// they come from; a session to close; the conference's end.
type fanout struct {
	Type    string            `json:"type"`
	E164    string            `json:"e164"`
	Version int64             `json:"version,omitempty"`
	Kick    string            `json:"kick,omitempty"`
	End     bool              `json:"end,omitempty"`
	Data    []json.RawMessage `json:"data,omitempty"`
}

// broadcast sends notifications to every client of a conference, on every
// instance, and closes the session kick if one is given; version is the
// breakout state's version they come from.
func (s *Service) broadcast(e164 string, version int64, notes []any, kick string) {
	if len(notes) == 0 && kick == "" {
		return
	}
	f := fanout{Type: protocol.BMSFanout, E164: e164, Version: version, Kick: kick, Data: make([]json.RawMessage, 0, len(notes))}
	for _, n := range notes {
		data, err := json.Marshal(n)
		if err != nil {
			s.log.Error("notification not encodable", "e164", e164, "err", err)
			continue
		}
		f.Data = append(f.Data, data)
	}
	if err := s.bus.Publish(protocol.SubjectBreakout(e164), f); err != nil {
		s.log.Warn("notifications not published", "e164", e164, "err", err)
	}
}

// hub holds this instance's clients by conference, each conference with
// its subscription to bms.<e164>.
type hub struct {
	s     *Service
	mu    sync.Mutex // guards confs
	confs map[string]*localConf
}

type localConf struct {
	clients map[*client]struct{}
	sub     *bus.Subscription
}

func newHub(s *Service) *hub { return &hub{s: s, confs: map[string]*localConf{}} }

// add registers a client; the first of a conference subscribes to its
// notifications, which flow by the time add returns.
func (h *hub) add(ctx context.Context, c *client) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	lc := h.confs[c.e164]
	if lc == nil {
		sub, err := h.s.bus.Subscribe(protocol.SubjectBreakout(c.e164), bus.HandlerFunc(h.deliver))
		if err != nil {
			return err
		}
		if err := h.s.bus.Flush(ctx); err != nil {
			_ = sub.Unsubscribe()
			return err
		}
		lc = &localConf{clients: map[*client]struct{}{}, sub: sub}
		h.confs[c.e164] = lc
	}
	lc.clients[c] = struct{}{}
	return nil
}

// remove forgets a client; the last of a conference unsubscribes.
func (h *hub) remove(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	lc := h.confs[c.e164]
	if lc == nil {
		return
	}
	delete(lc.clients, c)
	if len(lc.clients) == 0 {
		_ = lc.sub.Unsubscribe()
		delete(h.confs, c.e164)
	}
}

// deliver pushes a fanout to the local clients of its conference.
func (h *hub) deliver(_ context.Context, m *bus.Msg) {
	var f fanout
	if err := m.Decode(&f); err != nil {
		h.s.log.Warn("undecodable fanout", "subject", m.Subject, "err", err)
		return
	}
	if f.End {
		h.endConf(f.E164)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	lc := h.confs[f.E164]
	if lc == nil {
		return
	}
	compact := &compactForms{e164: f.E164, data: f.Data, version: f.Version, log: h.s.log}
	for c := range lc.clients {
		if f.Kick != "" && c.session == f.Kick {
			c.close(statusReplaced, "replaced by a newer connection of the same user")
			continue
		}
		for i, d := range f.Data {
			if c.compact {
				if cs := compact.at(i); cs != nil {
					d = cs.forUser(c.id.UserID)
				}
			}
			c.send(d)
		}
	}
}

// local lists the conferences with clients on this instance.
func (h *hub) local() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.confs))
	for e := range h.confs {
		out = append(out, e)
	}
	return out
}

// endConf tells a conference's clients it ended and disconnects them.
func (h *hub) endConf(e164 string) {
	h.mu.Lock()
	lc := h.confs[e164]
	delete(h.confs, e164)
	h.mu.Unlock()
	if lc == nil {
		return
	}
	_ = lc.sub.Unsubscribe()
	for c := range lc.clients {
		c.ended.Store(true)
		data, _ := json.Marshal(protocol.BreakoutRoomsStopNotify{
			Type: protocol.BMSBreakoutRoomsStopNotify, StatusCode: protocol.BreakoutConfEnded,
			Message: "conference " + e164 + " ended", ConfID: e164,
		})
		c.send(data)
		c.closeAfterFlush(statusConfEnded, "conference ended")
	}
}

// closeAll closes every client with a code and a reason.
func (h *hub) closeAll(code websocket.StatusCode, reason string) {
	for _, c := range h.take() {
		c.close(code, reason)
	}
}

// dropAll drops every connection without a word (Kill).
func (h *hub) dropAll() {
	for _, c := range h.take() {
		c.drop()
	}
}

func (h *hub) take() []*client {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*client
	for e, lc := range h.confs {
		_ = lc.sub.Unsubscribe()
		for c := range lc.clients {
			c.gone.Store(true)
			out = append(out, c)
		}
		delete(h.confs, e)
	}
	return out
}

// client is one WebSocket connection of a user to this instance.
type client struct {
	s       *Service
	e164    string
	id      Identity
	session string
	// compact: the client asked for the compact form of the start
	// notify (protocol.NotifyCompact).
	compact bool
	conn    *websocket.Conn
	out     chan []byte // nil: close after what is queued
	done    chan struct{}
	once    sync.Once
	// ended and gone are set before the client is closed: the conference
	// ended, or the instance stops. Either way the user does not leave the
	// conference on this instance's account.
	ended, gone atomic.Bool

	cmu         sync.Mutex // guards the close code and reason below
	closeCode   websocket.StatusCode
	closeReason string
}

func (s *Service) newClient(e164 string, id Identity, session string, compact bool, conn *websocket.Conn) *client {
	return &client{
		s: s, e164: e164, id: id, session: session, compact: compact, conn: conn,
		out: make(chan []byte, s.opts.ClientQueue), done: make(chan struct{}),
	}
}

// send queues a message; a client too slow to take it is disconnected.
func (c *client) send(data []byte) {
	select {
	case <-c.done:
	case c.out <- data:
	default:
		c.close(statusSlow, "too slow: notifications piled up")
	}
}

// sendJSON encodes and queues a message.
func (c *client) sendJSON(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		c.s.log.Error("reply not encodable", "e164", c.e164, "err", err)
		return
	}
	c.send(data)
}

// writeLoop writes queued messages until the client closes.
func (c *client) writeLoop() {
	for {
		select {
		case <-c.done:
			return
		case data := <-c.out:
			if data == nil {
				c.close(c.pendingClose())
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), c.s.opts.WriteTimeout)
			err := c.conn.Write(ctx, websocket.MessageText, data)
			cancel()
			if err != nil {
				c.drop()
				return
			}
		}
	}
}

// closeAfterFlush closes the connection once what is queued is written.
func (c *client) closeAfterFlush(code websocket.StatusCode, reason string) {
	c.cmu.Lock()
	c.closeCode, c.closeReason = code, reason
	c.cmu.Unlock()
	select {
	case c.out <- nil:
	default:
		c.close(code, reason)
	}
}

func (c *client) pendingClose() (websocket.StatusCode, string) {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	if c.closeCode == 0 {
		return websocket.StatusNormalClosure, ""
	}
	return c.closeCode, c.closeReason
}

// close closes the connection with a code and a reason (the close
// handshake runs in the background).
func (c *client) close(code websocket.StatusCode, reason string) {
	c.once.Do(func() {
		close(c.done)
		go func() {
			_ = c.conn.Close(code, reason)
		}()
	})
}

// drop closes the connection at once.
func (c *client) drop() {
	c.once.Do(func() {
		close(c.done)
		_ = c.conn.CloseNow()
	})
}
