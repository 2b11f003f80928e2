package scheduler

import (
	"sync"

	"github.com/convene/convene/internal/protocol"
)

// loads counts the conferences this scheduler has placed on each node,
// including creates still in flight, so that concurrent creates spread
// evenly: with equal nodes the counts never differ by more than one.
//
// It also keeps the nodes that went silent: a node that did not answer a
// create or a restore (timeout, nobody listening) is passed over by every
// pick until it answers again. Until RMS declares such a node down (its
// detection grace), it would otherwise stay the least loaded of the offer,
// since its failed creates count nothing on it, and swallow one create
// after another.
type loads struct {
	mu     sync.Mutex
	n      map[string]int
	silent map[string]chan struct{} // closed when the node answers again
}

func newLoads() *loads {
	return &loads{n: make(map[string]int), silent: make(map[string]chan struct{})}
}

// reset forgets every count and silence, for a new term. The loads stay
// the same object: a goroutine of the last term still finishing counts on
// it under its lock, never on a pointer being replaced.
func (l *loads) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n = make(map[string]int)
	l.silent = make(map[string]chan struct{})
}

// pick takes the candidate with the fewest conferences (the earliest of
// equals, so RMS's room preference breaks ties) that has room left and has
// not gone silent, and counts one more on it.
func (l *loads) pick(cands []protocol.Server) (protocol.Server, bool) {
	return l.choose(cands, "", false)
}

// pickAvoiding is pick, passing over the node avoid unless it is the only
// one with room.
func (l *loads) pickAvoiding(cands []protocol.Server, avoid string) (protocol.Server, bool) {
	return l.choose(cands, avoid, false)
}

// pickOther is pick without the node not: the second try of a create that
// node failed.
func (l *loads) pickOther(cands []protocol.Server, not string) (protocol.Server, bool) {
	return l.choose(cands, not, true)
}

func (l *loads) choose(cands []protocol.Server, avoid string, strict bool) (protocol.Server, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	best, fallback := -1, -1
	for i, c := range cands {
		if c.Capacity > 0 && l.n[c.Node] >= c.Capacity {
			continue
		}
		if _, quiet := l.silent[c.Node]; quiet {
			continue
		}
		if c.Node == avoid {
			if !strict {
				fallback = i
			}
			continue
		}
		if best < 0 || l.n[c.Node] < l.n[cands[best].Node] {
			best = i
		}
	}
	if best < 0 {
		best = fallback
	}
	if best < 0 {
		return protocol.Server{}, false
	}
	l.n[cands[best].Node]++
	return cands[best], true
}

// silence marks a node that did not answer. It returns a channel closed
// when the node is heard again, and whether this call silenced it (false:
// it already was).
func (l *loads) silence(node string) (<-chan struct{}, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.silent[node]; ok {
		return ch, false
	}
	ch := make(chan struct{})
	l.silent[node] = ch
	return ch, true
}

// heard clears a node's silence: it answered, or RMS saw it come up.
func (l *loads) heard(node string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch, ok := l.silent[node]
	if ok {
		close(ch)
		delete(l.silent, node)
	}
	return ok
}

// isSilent reports whether picks pass over node.
func (l *loads) isSilent(node string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.silent[node]
	return ok
}

func (l *loads) add(node string, d int) {
	if node == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n[node] += d
	if l.n[node] <= 0 {
		delete(l.n, node)
	}
}

func (l *loads) get(node string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[node]
}

func (l *loads) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := 0
	for _, v := range l.n {
		t += v
	}
	return t
}
