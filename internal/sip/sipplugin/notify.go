package sipplugin

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/protocol"
)

// notifierQueue is how many changes may wait for the bus.
const notifierQueue = 4096

// notifier announces the changes of the live calls a call records
// service recorded (a call started, was answered, ended) on the
// platform's call notification subject, for the API's event stream and
// the console. It never makes the service wait: a change is queued, and
// one goroutine publishes the queue in order; a change that finds the
// queue full, no bus, or the bus down is dropped and counted.
type notifier struct {
	subject string
	log     *slog.Logger

	queue chan cdr.Change
	bus   atomic.Pointer[bus.Bus]

	mu      sync.Mutex // guards started and stopped against close
	started bool
	stopped bool
	stop    chan struct{}
	done    chan struct{}

	published, dropped atomic.Int64
}

func newNotifier(platform string, log *slog.Logger) *notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &notifier{subject: protocol.SubjectCallNotify(platform), log: log,
		queue: make(chan cdr.Change, notifierQueue), stop: make(chan struct{}), done: make(chan struct{})}
}

// offer queues a change (cdr.Options.Publish): it never blocks.
func (n *notifier) offer(c cdr.Change) {
	b := n.bus.Load()
	if b == nil || !b.Connected() {
		n.dropped.Add(1)
		return
	}
	select {
	case n.queue <- c:
	default:
		n.dropped.Add(1)
	}
}

// start publishes through b until close.
func (n *notifier) start(b *bus.Bus) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started || n.stopped {
		return
	}
	n.started = true
	n.bus.Store(b)
	go n.run(b)
}

func (n *notifier) run(b *bus.Bus) {
	defer close(n.done)
	for {
		select {
		case c := <-n.queue:
			n.publish(b, c)
		case <-n.stop:
			return
		}
	}
}

func (n *notifier) publish(b *bus.Bus, c cdr.Change) {
	if !b.Connected() {
		n.dropped.Add(1)
		return
	}
	if err := b.Publish(n.subject, c); err != nil {
		if n.dropped.Add(1) == 1 {
			n.log.Warn("cdr: a live-call change was not announced on the bus", "subject", n.subject, "err", err)
		}
		return
	}
	n.published.Add(1)
}

// close stops publishing and waits for the publisher; what is still
// queued is dropped and counted (the calls' state is in the records
// database).
func (n *notifier) close() {
	n.mu.Lock()
	started := n.started
	if !n.stopped {
		n.stopped = true
		n.bus.Store(nil)
		close(n.stop)
	}
	n.mu.Unlock()
	if started {
		<-n.done
	}
	for {
		select {
		case <-n.queue:
			n.dropped.Add(1)
		default:
			return
		}
	}
}

// register counts what was announced and dropped on reg, labelled with
// the server's name.
func (n *notifier) register(reg prometheus.Registerer, server string) {
	labels := prometheus.Labels{"server": server}
	for _, m := range []struct {
		name, help string
		v          *atomic.Int64
	}{
		{"convene_cdr_changes_published_total", "Changes of live calls announced on the bus.", &n.published},
		{"convene_cdr_changes_dropped_total", "Changes of live calls not announced: the bus was down or behind.", &n.dropped},
	} {
		v := m.v
		_ = reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help, ConstLabels: labels},
			func() float64 { return float64(v.Load()) }))
	}
}
