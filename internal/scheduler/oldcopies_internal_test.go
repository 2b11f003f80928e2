package scheduler

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/testkit"
)

type sentReleases struct {
	mu   sync.Mutex
	sent map[string][][]string
}

func (r *sentReleases) send(node string, e164s []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sent == nil {
		r.sent = map[string][][]string{}
	}
	r.sent[node] = append(r.sent[node], slices.Clone(e164s))
}

func (r *sentReleases) of(node string) [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sent[node])
}

// The releases of old copies that restore batches queue are sent as one
// command per old node, whatever the number of batches; a copy the node
// hosts again by the store's word meanwhile is not released.
func TestOldCopiesGatheredPerNode(t *testing.T) {
	var r sentReleases
	o := newOldCopies(time.Hour, time.Hour, r.send) // flushed by hand
	// Four batches (one per target node), each with conferences of both
	// old nodes.
	o.add("old-1", []string{"a1", "a2"})
	o.add("old-2", []string{"b1"})
	o.add("old-1", []string{"a3"})
	o.add("old-2", []string{"b2", "b3"})
	o.add("old-1", []string{"a4"})
	// a3 was restored back onto old-1 meanwhile.
	o.cancel("old-1", "a3")
	o.cancel("old-3", "c1") // nothing queued there: no effect
	o.flush()
	if got := r.of("old-1"); len(got) != 1 || !slices.Equal(got[0], []string{"a1", "a2", "a4"}) {
		t.Fatalf("old-1 got %v, want one command [a1 a2 a4]", got)
	}
	if got := r.of("old-2"); len(got) != 1 || !slices.Equal(got[0], []string{"b1", "b2", "b3"}) {
		t.Fatalf("old-2 got %v, want one command [b1 b2 b3]", got)
	}
	o.flush() // nothing left
	if len(r.of("old-1")) != 1 || len(r.of("old-2")) != 1 {
		t.Fatal("a second flush sent the same releases again")
	}
}

// Queued releases go by themselves once the batches stop adding: the
// quiet window ends the gathering.
func TestOldCopiesSentAfterTheQuietWindow(t *testing.T) {
	var r sentReleases
	o := newOldCopies(10*time.Millisecond, time.Hour, r.send)
	o.add("old-1", []string{"a1"})
	o.add("old-1", []string{"a2"})
	testkit.AwaitWithin(t, 10*time.Second, "the release sent", func() bool { return len(r.of("old-1")) > 0 })
	got := r.of("old-1")
	var all []string
	for _, c := range got {
		all = append(all, c...)
	}
	slices.Sort(all)
	if !slices.Equal(all, []string{"a1", "a2"}) {
		t.Fatalf("released %v, want a1 and a2 once each", got)
	}
}
