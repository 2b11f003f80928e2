package bus

import (
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/nats-io/nats.go"
)

// Group serves many subjects with a few workers: one goroutine per running
// conference would otherwise be needed. Messages of one subject always go
// to the same worker, so they are handled in order.
//
// A group takes its subjects either one subscription each (Subscribe) or
// many under one wildcard subscription (SubscribeWildcard). The wildcard
// costs the bus and the server one subscription however many subjects it
// covers, where one per subject costs each about a kilobyte on both sides.
type Group struct {
	b      *Bus
	h      Handler
	seed   maphash.Seed
	shards []chan *nats.Msg
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

// NewGroup starts workers handling messages with h. Each worker's queue
// holds depth messages; a subject whose worker falls that far behind loses
// messages (the bus reports a slow consumer), so size it generously.
func (b *Bus) NewGroup(h Handler, workers, depth int) *Group {
	if workers < 1 {
		workers = 1
	}
	g := &Group{b: b, h: h, seed: maphash.MakeSeed(), shards: make([]chan *nats.Msg, workers), done: make(chan struct{})}
	for i := range g.shards {
		ch := make(chan *nats.Msg, depth)
		g.shards[i] = ch
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for {
				select {
				case nm := <-ch:
					b.serve(h, nm)
				case <-g.done:
					return
				}
			}
		}()
	}
	return g
}

// shard is the worker queue of a subject.
func (g *Group) shard(subject string) chan *nats.Msg {
	return g.shards[maphash.String(g.seed, subject)%uint64(len(g.shards))]
}

// Subscribe adds a subject to the group.
func (g *Group) Subscribe(subject string) (*Subscription, error) {
	sub, err := g.b.nc.ChanSubscribe(subject, g.shard(subject))
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe %s: %w", subject, mapErr(err))
	}
	return &Subscription{sub: sub}, nil
}

// SubscribeWildcard adds every subject a wildcard (mau.cmcmu.*) matches,
// with one subscription: each message goes to the worker of its own
// subject, so the messages of one subject are still handled in order. A
// worker whose queue is full holds up the others until it has room; what
// arrives meanwhile waits in the subscription's own buffer.
func (g *Group) SubscribeWildcard(subject string) (*Subscription, error) {
	sub, err := g.b.nc.Subscribe(subject, func(nm *nats.Msg) {
		select {
		case g.shard(nm.Subject) <- nm:
		case <-g.done:
		}
	})
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe %s: %w", subject, mapErr(err))
	}
	// A restore wave or a bench sends bursts that must not be dropped.
	_ = sub.SetPendingLimits(1<<20, 512<<20)
	return &Subscription{sub: sub}, nil
}

// Close stops the workers; messages still queued are dropped. Unsubscribe
// the group's subscriptions first.
func (g *Group) Close() {
	g.once.Do(func() { close(g.done) })
	g.wg.Wait()
}
