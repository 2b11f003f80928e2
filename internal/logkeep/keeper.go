package logkeep

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Line is a log line to keep.
type Line struct {
	At      time.Time
	Level   string // DEBUG, INFO, WARN or ERROR
	Node    string // the host that logged it
	CallID  string // the SIP Call-ID of the call it is about, if any
	E164    string // the conference it is about, if any
	Message string
	Attrs   map[string]string // the line's other attributes, groups joined with "."
}

// Sink keeps lines. A write that failed may be sent again: a line kept
// twice must be stored once.
type Sink interface {
	KeepLines(ctx context.Context, lines []Line) error
}

// Options tune a Keeper; the zero value is the defaults.
type Options struct {
	// Node names the host in every line.
	Node string
	// Level is the lowest level kept (default Info).
	Level slog.Level
	// Queue is how many lines may wait to be written (default 8,192);
	// a line that finds the queue full is dropped.
	Queue int
	// Batch is the most lines one write carries (default 500).
	Batch int
	// Every is the longest a line waits for its batch (default 500 ms).
	Every time.Duration
	// WriteTimeout bounds one write (default 5 s).
	WriteTimeout time.Duration
	// Log reports the keeper's own failures; it should not be the
	// logger the keeper wraps.
	Log *slog.Logger
}

// Stats count lines.
type Stats struct {
	Kept    uint64 // written to the sink
	Dropped uint64 // not queued: the queue was full, or the keeper stopping
	Failed  uint64 // queued, but the sink refused or did not answer
}

// Keeper queues lines and writes them to its sink in batches. Until a sink
// is attached (and after it is detached) it keeps nothing.
type Keeper struct {
	opts Options
	q    chan Line

	active                atomic.Bool
	kept, dropped, failed atomic.Uint64

	mu   sync.Mutex // guards the writer below; Attach and Detach only
	stop chan struct{}
	done chan struct{}
}

// New makes a keeper with no sink.
func New(o Options) *Keeper {
	if o.Queue <= 0 {
		o.Queue = 8192
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.Every <= 0 {
		o.Every = 500 * time.Millisecond
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Keeper{opts: o, q: make(chan Line, o.Queue)}
}

// Stats are the counts so far.
func (k *Keeper) Stats() Stats {
	return Stats{Kept: k.kept.Load(), Dropped: k.dropped.Load(), Failed: k.failed.Load()}
}

// Active reports whether a sink is attached.
func (k *Keeper) Active() bool { return k.active.Load() }

// Attach starts writing to s; it reports false, and changes nothing,
// when a sink is attached already.
func (k *Keeper) Attach(s Sink) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stop != nil {
		return false
	}
	k.stop, k.done = make(chan struct{}), make(chan struct{})
	go k.write(s, k.stop, k.done)
	k.active.Store(true)
	return true
}

// Detach stops keeping lines, writes those waiting (until ctx ends), and
// lets go of the sink. Without a sink it does nothing.
func (k *Keeper) Detach(ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stop == nil {
		return
	}
	k.active.Store(false)
	close(k.stop)
	select {
	case <-k.done:
	case <-ctx.Done():
	}
	k.stop, k.done = nil, nil
}

// Keep queues a line without waiting: with no sink attached it is not
// kept; with the queue full it is dropped and counted.
func (k *Keeper) Keep(l Line) {
	if !k.active.Load() {
		return
	}
	select {
	case k.q <- l:
	default:
		k.dropped.Add(1)
	}
}

// write is the writer: it sends batches to s until stop, then what
// waits.
func (k *Keeper) write(s Sink, stop, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(k.opts.Every)
	defer tick.Stop()
	batch := make([]Line, 0, k.opts.Batch)
	failing := false
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), k.opts.WriteTimeout)
		err := s.KeepLines(ctx, batch)
		cancel()
		switch {
		case err != nil:
			k.failed.Add(uint64(len(batch)))
			if !failing {
				k.opts.Log.Warn("logkeep: log lines not kept: the records database refused them or did not answer; they are dropped until it takes them again",
					"lines", len(batch), "err", err)
			}
			failing = true
		default:
			k.kept.Add(uint64(len(batch)))
			if failing {
				k.opts.Log.Info("logkeep: log lines are kept again")
			}
			failing = false
		}
		clear(batch)
		batch = batch[:0]
	}
	for {
		select {
		case l := <-k.q:
			batch = append(batch, l)
			if len(batch) == cap(batch) {
				flush()
			}
		case <-tick.C:
			flush()
		case <-stop:
			for {
				select {
				case l := <-k.q:
					batch = append(batch, l)
					if len(batch) == cap(batch) {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}
