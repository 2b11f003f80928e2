package breakout

import (
	"context"
	"log/slog"
	"sync"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// outbox sends plan changes to the media nodes, in the background so that
// an operation never waits for a node. Changes of a conference that pile
// up while a send is under way are merged: the node gets each changed
// item once, from the newest plan, with the newest version — what it
// would hold after applying every change one by one, since it keeps the
// highest version of each item.
type outbox struct {
	bus *bus.Bus
	log *slog.Logger
	// sent records that a conference's plan of a version went out.
	sent func(e164 string, version int64)

	mu      sync.Mutex // guards pending
	pending map[string]*pendingPlan
	wake    chan struct{}
}

type pendingPlan struct {
	node    string
	version int64
	plan    *Plan
	delta   Delta
}

func newOutbox(b *bus.Bus, log *slog.Logger, sent func(string, int64)) *outbox {
	return &outbox{bus: b, log: log, sent: sent, pending: map[string]*pendingPlan{}, wake: make(chan struct{}, 1)}
}

// push queues a conference's change for its node.
func (o *outbox) push(e164, node string, version int64, plan *Plan, d Delta) {
	if d.Empty() {
		return
	}
	o.mu.Lock()
	p := o.pending[e164]
	if p == nil {
		p = &pendingPlan{}
		o.pending[e164] = p
	}
	if p.node != "" && p.node != node {
		// The conference moved: the new node gets everything.
		d = Full(plan)
	}
	p.delta.Merge(d)
	p.node, p.version, p.plan = node, version, plan
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
			o.flush()
		}
	}
}

func (o *outbox) flush() {
	o.mu.Lock()
	batch := o.pending
	o.pending = map[string]*pendingPlan{}
	o.mu.Unlock()
	for e164, p := range batch {
		if p.node == "" {
			o.log.Debug("breakout plan not sent: the conference has no node now", "e164", e164, "version", p.version)
			continue
		}
		subject := protocol.SubjectToNode(p.node)
		failed := false
		for _, m := range p.plan.Messages(e164, p.version, p.delta) {
			if err := o.bus.Publish(subject, m); err != nil {
				o.log.Warn("breakout plan not sent to the node", "e164", e164, "node", p.node, "err", err)
				failed = true
			}
		}
		if !failed {
			o.sent(e164, p.version)
		}
	}
}
