package scheduler

import (
	"slices"
	"sync"
	"time"
)

// A restored conference's old copy is released once the new one runs
// (make before break), on its old node. A failed room's conferences are
// restored in batches by target node, each gathering conferences of many
// old nodes: released batch by batch, an old node would get one command
// per batch that took any of its conferences, about one conference each
// when a room of hundreds of nodes fails. oldCopies gathers the releases
// per old node and sends one command per node once the restores stop
// adding for releaseQuiet, or releaseGather after the first, whichever
// comes first.

// The gathering windows of oldCopies.
const (
	releaseQuiet  = 20 * time.Millisecond
	releaseGather = 200 * time.Millisecond
)

// oldCopies gathers the releases of old copies per node. The zero value
// is not ready: use newOldCopies.
type oldCopies struct {
	quiet, most time.Duration
	send        func(node string, e164s []string)

	mu      sync.Mutex
	pending map[string][]string
	first   time.Time
	timer   *time.Timer
}

func newOldCopies(quiet, most time.Duration, send func(node string, e164s []string)) *oldCopies {
	return &oldCopies{quiet: quiet, most: most, send: send}
}

// add queues the release of copies of e164s on node.
func (o *oldCopies) add(node string, e164s []string) {
	if len(e164s) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.pending) == 0 {
		o.pending = map[string][]string{}
		o.first = time.Now()
	}
	o.pending[node] = append(o.pending[node], e164s...)
	wait := min(o.quiet, max(0, o.most-time.Since(o.first)))
	if o.timer == nil {
		o.timer = time.AfterFunc(wait, o.flush)
	} else {
		o.timer.Reset(wait)
	}
}

// cancel drops a queued release of e164 on node: the node hosts it now
// by the store's word (a create, a restore or a report put it back
// there), and a late release would end the copy that counts.
func (o *oldCopies) cancel(node, e164 string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if l, ok := o.pending[node]; ok {
		if i := slices.Index(l, e164); i >= 0 {
			o.pending[node] = slices.Delete(l, i, i+1)
		}
	}
}

// flush sends what is queued: one command per node.
func (o *oldCopies) flush() {
	o.mu.Lock()
	p := o.pending
	o.pending = nil
	o.mu.Unlock()
	for node, l := range p {
		if len(l) > 0 {
			o.send(node, l)
		}
	}
}

// hosts records that node hosts e164 by the store's word: a mark that it
// was told to let it go, and a queued release of an old copy there, no
// longer apply.
func (s *Scheduler) hosts(node, e164 string) {
	s.released.forget(node, e164)
	s.oldCopies.cancel(node, e164)
}
