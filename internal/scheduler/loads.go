package scheduler

import (
	"sync"

	"github.com/convene/convene/internal/protocol"
)

// loads counts the conferences this scheduler has placed on each node,
// including creates still in flight, so that concurrent creates spread
// evenly: with equal nodes the counts never differ by more than one.
type loads struct {
	mu sync.Mutex
	n  map[string]int
}

func newLoads() *loads { return &loads{n: make(map[string]int)} }

// pick takes the candidate with the fewest conferences (the earliest of
// equals, so RMS's room preference breaks ties) that has room left, and
// counts one more on it.
func (l *loads) pick(cands []protocol.Server) (protocol.Server, bool) {
	return l.pickAvoiding(cands, "")
}

// pickAvoiding is pick, passing over the node avoid unless it is the only
// one with room.
func (l *loads) pickAvoiding(cands []protocol.Server, avoid string) (protocol.Server, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	best, fallback := -1, -1
	for i, c := range cands {
		if c.Capacity > 0 && l.n[c.Node] >= c.Capacity {
			continue
		}
		if c.Node == avoid {
			fallback = i
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
