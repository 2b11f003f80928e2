package cdr

import (
	"sync"
)

// Kinds of change, as the event stream names them.
const (
	ChangeStarted  = "call.started"
	ChangeAnswered = "call.answered"
	ChangeEnded    = "call.ended"
)

// Change is a change of the live calls: a call started, was answered, or
// ended (its record written). Call is the call as stored after the
// change: a live call (End null) or its record.
type Change struct {
	Kind string `json:"kind"`
	Call CDR    `json:"call"`
}

// DefaultFeedBuffer is the changes a subscriber may fall behind by.
const DefaultFeedBuffer = 1024

// Subscription receives the changes recorded after it was made, in the
// order they were committed (by this service; those of other nodes in the
// order Deliver was given them).
type Subscription struct {
	// C delivers the changes. It is closed by Close, by the service's
	// Shutdown, or when the subscriber falls more than its buffer behind
	// (Err then says so).
	C <-chan Change

	c    chan Change
	hub  *hub
	err  error // set before c is closed for falling behind
	once sync.Once
}

// Err is ErrSlowSubscriber when C was closed because the subscriber fell
// behind, else nil.
func (sub *Subscription) Err() error {
	sub.hub.mu.Lock()
	defer sub.hub.mu.Unlock()
	return sub.err
}

// Close ends the subscription and closes C.
func (sub *Subscription) Close() {
	sub.hub.mu.Lock()
	defer sub.hub.mu.Unlock()
	sub.hub.drop(sub, nil)
}

// hub fans changes out to subscribers without ever waiting for one.
type hub struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

// drop removes sub and closes its channel; mu is held.
func (h *hub) drop(sub *Subscription, err error) {
	sub.once.Do(func() {
		delete(h.subs, sub)
		sub.err = err
		close(sub.c)
	})
}

func (h *hub) subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultFeedBuffer
	}
	c := make(chan Change, buffer)
	sub := &Subscription{C: c, c: c, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		h.drop(sub, nil)
		return sub
	}
	if h.subs == nil {
		h.subs = map[*Subscription]struct{}{}
	}
	h.subs[sub] = struct{}{}
	return sub
}

func (h *hub) publish(c Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		select {
		case sub.c <- c:
		default:
			h.drop(sub, ErrSlowSubscriber)
		}
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		h.drop(sub, nil)
	}
}

// Subscribe follows the changes of the live calls: those this service
// records and those other nodes' services recorded and Deliver was given.
// buffer is how far the subscriber may fall behind (0: DefaultFeedBuffer)
// before its channel is closed with ErrSlowSubscriber. A subscriber that
// needs the state reads the live calls after subscribing, and applies
// the changes over them (a change carries the whole call, so one seen
// twice does no harm).
func (s *Service) Subscribe(buffer int) *Subscription { return s.feed.subscribe(buffer) }

// Deliver hands the local subscribers a change another node's service
// recorded (relayed from its Options.Publish).
func (s *Service) Deliver(c Change) { s.feed.publish(c) }
