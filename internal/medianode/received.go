package medianode

import (
	"sync"
	"time"
)

// receivedLimit is how many received messages a node remembers.
const receivedLimit = 10_000

// Received is a message the node received from the scheduler.
type Received struct {
	Type string
	E164 string
	At   time.Time
}

// Received returns the messages the node received from the scheduler, the
// oldest first: the last 10,000, whatever a fault made of them.
func (n *Node) Received() []Received { return n.recv.snapshot() }

// receivedLog is a bounded ring of received messages.
type receivedLog struct {
	mu    sync.Mutex
	limit int // 0 means receivedLimit
	buf   []Received
	next  int // where the next entry goes once buf is full
}

func (r *receivedLog) add(typ, e164 string) {
	at := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	limit := r.limit
	if limit == 0 {
		limit = receivedLimit
	}
	if len(r.buf) < limit {
		r.buf = append(r.buf, Received{Type: typ, E164: e164, At: at})
		return
	}
	r.buf[r.next] = Received{Type: typ, E164: e164, At: at}
	r.next = (r.next + 1) % limit
}

func (r *receivedLog) snapshot() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Received, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}
