package scheduler

import (
	"context"
	"sync"
	"time"

	"github.com/convene/convene/internal/protocol"
)

// A node that does not answer a create or a restore may be dying: RMS
// declares it down only after its detection grace, and until then offers
// it like any other. Such a node is passed over by every pick (loads) until
// it answers again: a prober repeats the release of the conference it did
// not answer for, as a request, every NodeTimeout, until the node answers
// it (an ACK or a NACK: it takes requests again), RMS announces the node up
// or down (a node declared down is not offered; one that comes back is
// offered afresh), or the term ends.

// letGoMemory is how long the scheduler remembers telling a node to let a
// conference go after a failed request: a copy that node reports meanwhile
// is a late one, never the copy to keep (000 §9.2's duplicate rule) nor
// one to adopt, since the node is about to end it. A later create or
// restore of the conference on that node clears the mark.
const letGoMemory = 10 * time.Minute

// letGoes remembers the copies nodes were told to let go.
type letGoes struct {
	mu sync.Mutex
	at map[string]time.Time // node + "/" + e164
}

func (g *letGoes) note(node, e164 string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.at == nil {
		g.at = make(map[string]time.Time)
	}
	g.at[node+"/"+e164] = time.Now()
}

// forget drops the mark: the node now hosts e164 by the store's word.
func (g *letGoes) forget(node, e164 string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.at, node+"/"+e164)
}

// told reports whether node was told to let e164 go within letGoMemory.
func (g *letGoes) told(node, e164 string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.at[node+"/"+e164]
	return ok && time.Since(at) < letGoMemory
}

// prune forgets what is older than letGoMemory.
func (g *letGoes) prune() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, at := range g.at {
		if time.Since(at) >= letGoMemory {
			delete(g.at, k)
		}
	}
}

// letGo tells a node to release a conference it may host against the
// store's word (it did not answer its create or restore in time, or the
// store refused to record it), and remembers it.
func (s *Scheduler) letGo(node, e164 string) {
	s.released.note(node, e164)
	s.tellNode(node, protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: e164})
}

// nodeSilent handles a node that did not answer a request about e164: the
// node lets the conference go, and picks pass over it until it answers.
func (s *Scheduler) nodeSilent(node, e164 string) {
	s.letGo(node, e164)
	l := s.loads
	heard, first := l.silence(node)
	if !first {
		return
	}
	s.log.Warn("media node did not answer; no conference goes to it until it answers again", "node", node, "e164", e164)
	s.m.op("node-silent", nil)
	t := s.currentTerm()
	if t == nil {
		return
	}
	// Not counted in the term's wait group: the prober ends with the
	// term's context, after at most one request.
	go s.probe(t.ctx, l, node, e164, heard)
}

// probe asks a silent node to release e164 until it answers.
func (s *Scheduler) probe(ctx context.Context, l *loads, node, e164 string, heard <-chan struct{}) {
	for {
		pctx, cancel := context.WithTimeout(ctx, s.opts.NodeTimeout)
		err := s.bus.Call(pctx, protocol.SubjectToNode(node), protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: e164}, nil)
		cancel()
		if err == nil || isNack(err) {
			if l.heard(node) {
				s.log.Info("media node answers again", "node", node)
			}
			return
		}
		wait := time.NewTimer(s.opts.NodeTimeout)
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-heard:
			wait.Stop()
			return
		case <-wait.C:
		}
	}
}
