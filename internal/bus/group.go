package bus

import (
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/nats-io/nats.go"
)

// Group serves many subscriptions with a few workers: one subscription per
// running conference would otherwise cost one goroutine each. Messages of
// one subject always go to the same worker, so they are handled in order.
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

// Subscribe adds a subject to the group.
func (g *Group) Subscribe(subject string) (*Subscription, error) {
	ch := g.shards[maphash.String(g.seed, subject)%uint64(len(g.shards))]
	sub, err := g.b.nc.ChanSubscribe(subject, ch)
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe %s: %w", subject, mapErr(err))
	}
	return &Subscription{sub: sub}, nil
}

// Close stops the workers; messages still queued are dropped. Unsubscribe
// the group's subscriptions first.
func (g *Group) Close() {
	g.once.Do(func() { close(g.done) })
	g.wg.Wait()
}
