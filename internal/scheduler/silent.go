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
	g.noteMany(node, []string{e164})
}

func (g *letGoes) noteMany(node string, e164s []string) {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.at == nil {
		g.at = make(map[string]time.Time)
	}
	for _, e := range e164s {
		g.at[node+"/"+e] = now
	}
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

// letGoMany is letGo for many conferences of one node, in one command.
func (s *Scheduler) letGoMany(node string, e164s []string) {
	s.released.noteMany(node, e164s)
	s.releaseCopies(node, e164s)
}

// releaseCopiesMax bounds the numbers one release command carries (about
// 15 bytes each on the wire).
const releaseCopiesMax = 200_000

// releaseCopies tells a node to stop hosting copies the store does not
// count on it (MAU_MCU_RELEASECONFS_CMD): one command, whatever their
// number up to releaseCopiesMax a command; a node that knows only the
// per-conference command is told one conference at a time.
func (s *Scheduler) releaseCopies(node string, e164s []string) {
	if s.oneByOne(node) {
		for _, e := range e164s {
			s.tellNode(node, protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: e})
		}
		return
	}
	for len(e164s) > 0 {
		part := e164s[:min(len(e164s), releaseCopiesMax)]
		e164s = e164s[len(part):]
		s.tellNode(node, protocol.ConfsCmd{Type: protocol.MAUMCUReleaseConfsCmd, E164s: part})
	}
}

// nodeSilent handles a node that did not answer a request about e164: the
// node lets the conference go, and picks pass over it until it answers.
func (s *Scheduler) nodeSilent(node, e164 string) {
	s.letGo(node, e164)
	s.silenced(node, e164)
}

// nodeSilentMany is nodeSilent for a request about many conferences.
func (s *Scheduler) nodeSilentMany(node string, e164s []string) {
	s.letGoMany(node, e164s)
	if len(e164s) > 0 {
		s.silenced(node, e164s[0])
	}
}

// silenced makes picks pass over a node that did not answer a request
// about e164 (among others), until it answers the prober or RMS has its
// say.
func (s *Scheduler) silenced(node, e164 string) {
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
