package sipplugin

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/sip"
)

// recorder takes a node's calls (sip.CallRecorder) into the call records
// service: the node never waits for the database. What it is told goes
// into a queue one goroutine posts from; a write that fails is posted
// again (every write is idempotent) after a pause, a few times, before it
// is counted lost.
type recorder struct {
	svc *cdr.Service
	log *slog.Logger

	queue chan report
	stop  chan struct{} // closed when the recorder stops taking reports
	done  chan struct{} // closed when the pump has ended

	mu     sync.Mutex // guards closed against requeues from retry timers
	closed bool

	// Counters of call steps (starts, answers, ends) and log lines.
	written, lost, linesLost atomic.Int64
	pending                  sync.WaitGroup // reports queued or being written
}

// report is one step of a call, or one log line, on its way.
type report struct {
	step    cdr.Step // 0 for a log line
	ev      cdr.CallEvent
	callID  string
	line    cdr.LogLine
	attempt int
	// written is told when an end is written (sip.CallRecorder).
	written func()
}

// Recorder tuning.
const (
	recorderQueue   = 1 << 16
	recorderRetries = 5
	recorderBackoff = 200 * time.Millisecond
)

func newRecorder(svc *cdr.Service, log *slog.Logger) *recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &recorder{svc: svc, log: log, queue: make(chan report, recorderQueue),
		stop: make(chan struct{}), done: make(chan struct{})}
	go r.pump()
	return r
}

func (r *recorder) CallStarted(_ context.Context, c sip.CallEvent) {
	r.put(report{step: cdr.Started, ev: eventOf(c)})
}

func (r *recorder) CallAnswered(_ context.Context, c sip.CallEvent) {
	r.put(report{step: cdr.Answered, ev: eventOf(c)})
}

func (r *recorder) CallEnded(_ context.Context, c sip.CallEvent, written func()) {
	r.put(report{step: cdr.Ended, ev: eventOf(c), written: written})
}

func (r *recorder) Log(_ context.Context, callID string, l sip.LogLine) {
	dir := l.Dir
	if dir == sip.LogRoute {
		dir = ""
	}
	r.put(report{callID: callID, line: cdr.LogLine{Time: l.At, Node: l.Node, Direction: dir, Peer: l.Peer, Message: l.Text}})
}

// eventOf is a node's call event as the call records take it.
func eventOf(c sip.CallEvent) cdr.CallEvent {
	return cdr.CallEvent{CallID: c.CallID, FromTag: c.FromTag, ToTag: c.ToTag, Caller: c.Caller, Called: c.Called,
		Type: c.Media, Node: c.Node, Platform: c.Platform, E164: c.E164,
		Start: c.Start, Answer: c.Answer, End: c.End, Status: c.Status, Connected: c.Connected}
}

// put queues a report without waiting: a full queue (the database far
// behind) loses it, and says so.
func (r *recorder) put(rp report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		r.lose(rp, errors.New("the call records are stopped"))
		return
	}
	r.pending.Add(1)
	select {
	case r.queue <- rp:
	default:
		r.pending.Done()
		r.lose(rp, errors.New("the call records' queue is full"))
	}
}

// pump posts what is queued to the service, in order.
func (r *recorder) pump() {
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.stop
		// Posting waits for room in the service's queue; past the stop
		// it must not wait forever.
		time.Sleep(time.Second)
		cancel()
	}()
	for {
		select {
		case rp := <-r.queue:
			r.post(ctx, rp)
		case <-r.stop:
			for {
				select {
				case rp := <-r.queue:
					r.post(ctx, rp)
				default:
					return
				}
			}
		}
	}
}

func (r *recorder) post(ctx context.Context, rp report) {
	done := func(err error) { r.finished(rp, err) }
	var err error
	if rp.step != 0 {
		err = r.svc.Post(ctx, rp.step, rp.ev, done)
	} else {
		err = r.svc.PostLog(ctx, rp.callID, rp.line, done)
	}
	if err != nil {
		r.finished(rp, err)
	}
}

// finished takes a report's outcome: counted written, or tried again
// after a pause, or lost.
func (r *recorder) finished(rp report, err error) {
	defer r.pending.Done()
	switch {
	case err == nil:
		if rp.step != 0 {
			r.written.Add(1)
		}
		if rp.written != nil {
			rp.written()
		}
		return
	case errors.Is(err, cdr.ErrInvalidEvent) || rp.attempt+1 >= recorderRetries:
		r.lose(rp, err)
		return
	}
	rp.attempt++
	r.pending.Add(1)
	time.AfterFunc(recorderBackoff<<rp.attempt, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.closed {
			r.pending.Done()
			r.lose(rp, err)
			return
		}
		select {
		case r.queue <- rp:
		default:
			r.pending.Done()
			r.lose(rp, err)
		}
	})
}

func (r *recorder) lose(rp report, err error) {
	if rp.step == 0 {
		r.linesLost.Add(1)
		return
	}
	r.lost.Add(1)
	r.log.Error("sip: a call's step was not recorded", "call_id", rp.ev.CallID, "step", int(rp.step), "err", err)
}

// close stops taking reports and posts those queued (retries pending
// included) until ctx ends.
func (r *recorder) close(ctx context.Context) {
	idle := make(chan struct{})
	go func() { r.pending.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-ctx.Done():
	}
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
	r.mu.Unlock()
	<-r.done
}
