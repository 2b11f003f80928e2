package bus

import (
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// poolIdle is how long a pool worker waits for a message before it ends.
const poolIdle = 10 * time.Second

// pool runs a subscription's handler on up to max goroutines at once.
// Workers stay while messages keep coming: a goroutine started per message
// begins on a small stack and grows it again for every message, which on
// the create path costs more than some of the handlers.
type pool struct {
	sem  chan struct{} // one token per message being handled
	work chan *nats.Msg
	fn   func(*nats.Msg)
	// started counts the workers ever started.
	started atomic.Int64
}

func newPool(max int, fn func(*nats.Msg)) *pool {
	return &pool{sem: make(chan struct{}, max), work: make(chan *nats.Msg), fn: fn}
}

// handle waits until fewer than max messages are being handled, then gives
// nm to an idle worker or, when none is waiting, to a new one. It never
// waits for a worker to come: a worker that is just ending is replaced.
func (p *pool) handle(nm *nats.Msg) {
	p.sem <- struct{}{}
	select {
	case p.work <- nm:
	default:
		p.started.Add(1)
		go p.worker(nm)
	}
}

func (p *pool) worker(nm *nats.Msg) {
	t := time.NewTimer(poolIdle)
	defer t.Stop()
	for {
		p.fn(nm)
		<-p.sem
		t.Reset(poolIdle)
		select {
		case nm = <-p.work:
		case <-t.C:
			return
		}
	}
}
