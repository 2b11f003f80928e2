package cdr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/convene/convene/internal/records"
)

// Options tune the service; the zero value is usable.
type Options struct {
	// TimeZone is the platform's time zone (an IANA name such as
	// Asia/Shanghai): days and hours of the query defaults, statistics
	// and roll-ups are its. "" is UTC.
	TimeZone string
	// MaxBatch bounds the steps and log lines written in one
	// transaction (default 2000). Writes waiting together share one.
	MaxBatch int
	// LogRetention is how long log lines are kept (default 30 days;
	// negative keeps them).
	LogRetention time.Duration
	// MaxCallDuration ends, with status 408, a live call that started
	// longer ago (its end was never reported: the node that carried it
	// died). Default 24 hours; negative never.
	MaxCallDuration time.Duration
	// MaintainEvery is the period of the retention and stale-call sweeps
	// (default 10 minutes).
	MaintainEvery time.Duration
	// Publish, when set, is given each change this service recorded,
	// after its commit (to relay to other nodes, whose services take it
	// with Deliver). It must not block.
	Publish func(Change)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 2000
	}
	if o.LogRetention == 0 {
		o.LogRetention = 30 * 24 * time.Hour
	}
	if o.MaxCallDuration == 0 {
		o.MaxCallDuration = 24 * time.Hour
	}
	if o.MaintainEvery <= 0 {
		o.MaintainEvery = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Service records calls and answers queries about them. Its methods are
// safe for concurrent use.
type Service struct {
	opts Options
	db   *records.DB
	loc  *time.Location
	log  *slog.Logger
	feed hub

	queue chan *op
	// mu guards closed against sends on queue: submitters hold it for
	// reading while they send, Shutdown for writing while it closes.
	mu      sync.RWMutex
	closed  bool
	started bool
	// stop ends the writer's transactions (at Shutdown's deadline),
	// stopSweeps the periodic sweeps (at Shutdown).
	stop, stopSweeps context.CancelFunc
	done             sync.WaitGroup
}

// op is one write waiting for its batch.
type op struct {
	step   records.CallStep
	isStep bool
	line   records.LogLine
	// done is told the outcome of the op's transaction, from the
	// writer's goroutine.
	done func(error)
}

func (o *op) finish(err error) {
	if o.done != nil {
		o.done(err)
	}
}

// New makes a service over a records database. It writes nothing until
// Start. A nil log discards.
func New(opts Options, db *records.DB, log *slog.Logger) (*Service, error) {
	opts = opts.withDefaults()
	loc, err := loadZone(opts.TimeZone)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Service{opts: opts, db: db, loc: loc, log: log, queue: make(chan *op, opts.MaxBatch)}, nil
}

// Location is the platform's time zone.
func (s *Service) Location() *time.Location { return s.loc }

// Start checks the time zone against the one the database keeps its
// roll-ups in (claiming it on a new database), counts the number
// roll-ups of a database upgraded from a version without them (once: it
// reads every record), then starts writing and the periodic sweeps; it
// returns at once. Errors: ErrTimeZone (another
// zone is recorded: configure it, or rebuild the roll-ups in this one).
func (s *Service) Start(ctx context.Context) error {
	stored, err := s.db.ClaimRollupZone(ctx, s.loc.String())
	if err != nil {
		return err
	}
	if stored != s.loc.String() {
		return fmt.Errorf("%w: the records database %s keeps its call statistics in the time zone %s, this service is set to %s: set the time zone to %s, or rebuild the statistics in %s on every node at once (convene cdr rebuild-rollups)",
			ErrTimeZone, s.db.URL(), stored, s.loc, stored, s.loc)
	}
	// A database upgraded from a version without number roll-ups has its
	// records counted in them now, once (every record is read).
	if err := s.db.BackfillNumberRollups(ctx, s.buckets); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.started {
		return ErrClosed
	}
	s.started = true
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	sweeps, stopSweeps := context.WithCancel(bg)
	s.stop, s.stopSweeps = stop, stopSweeps
	s.done.Add(2)
	go func() { defer s.done.Done(); s.writer(bg) }()
	go func() { defer s.done.Done(); s.maintain(sweeps) }()
	return nil
}

// Shutdown stops taking writes, writes those already taken, and stops.
// Past ctx's end it stops at once (a write in flight may be lost to its
// caller, who may send it again).
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	started := s.started
	s.mu.Unlock()
	s.feed.closeAll()
	if !started {
		for o := range s.queue {
			o.finish(ErrClosed)
		}
		return nil
	}
	s.stopSweeps()
	finished := make(chan struct{})
	go func() { s.done.Wait(); close(finished) }()
	select {
	case <-finished:
		s.stop()
		return nil
	case <-ctx.Done():
		s.stop()
		<-finished
		return ctx.Err()
	}
}

// CallStarted records that a call started (an INVITE was seen).
func (s *Service) CallStarted(ctx context.Context, e CallEvent) error {
	return s.recordStep(ctx, e, records.CallStart)
}

// CallAnswered records that a call was answered.
func (s *Service) CallAnswered(ctx context.Context, e CallEvent) error {
	return s.recordStep(ctx, e, records.CallAnswer)
}

// CallEnded records that a call ended: its record is written and counted
// once, however many times and by however many nodes this is reported.
func (s *Service) CallEnded(ctx context.Context, e CallEvent) error {
	return s.recordStep(ctx, e, records.CallEnd)
}

// Log keeps a line of the log of the call with this SIP Call-ID (each SIP
// message in and out, each routing decision). The same line logged twice
// is kept once.
func (s *Service) Log(ctx context.Context, callID string, l LogLine) error {
	if err := s.checkLine(callID, l); err != nil {
		return err
	}
	return s.submit(ctx, &op{line: l.record(callID, s.opts.Now())})
}

func (s *Service) checkLine(callID string, l LogLine) error {
	if err := l.check(); err != nil {
		return err
	}
	if err := checkText(callID, maxText); err != nil {
		return fmt.Errorf("%w: log line: Call-ID %w", ErrInvalidEvent, err)
	}
	if callID == "" && l.E164 == "" {
		return fmt.Errorf("%w: a log line belongs to a call (its Call-ID) or a conference (E164)", ErrInvalidEvent)
	}
	return nil
}

func (s *Service) recordStep(ctx context.Context, e CallEvent, k records.CallStepKind) error {
	if err := e.check(); err != nil {
		return err
	}
	return s.submit(ctx, &op{step: e.step(k, s.opts.Now()), isStep: true})
}

// submit queues a write and waits for its transaction. A caller whose
// ctx ends first gets ctx's error; the write may still be made (every
// write is safe to repeat).
func (s *Service) submit(ctx context.Context, o *op) error {
	done := make(chan error, 1)
	o.done = func(err error) { done <- err }
	if err := s.enqueue(ctx, o); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue queues a write for the writer, waiting while the queue is full
// until ctx ends.
func (s *Service) enqueue(ctx context.Context, o *op) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.queue <- o:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writer writes what is queued: each transaction takes every write
// waiting, up to MaxBatch, so writers that arrive together share one
// commit.
func (s *Service) writer(ctx context.Context) {
	batch := make([]*op, 0, s.opts.MaxBatch)
	for first := range s.queue {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case o, ok := <-s.queue:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		s.write(ctx, batch)
	}
}

func (s *Service) write(ctx context.Context, batch []*op) {
	var b records.CallBatch
	for _, o := range batch {
		if o.isStep {
			b.Steps = append(b.Steps, o.step)
		} else {
			b.Lines = append(b.Lines, o.line)
		}
	}
	out, err := s.db.WriteCalls(ctx, b, s.buckets)
	if err != nil {
		s.log.Error("cdr: write failed", "steps", len(b.Steps), "lines", len(b.Lines), "err", err)
	}
	for _, o := range batch {
		o.finish(err)
	}
	if err == nil {
		s.announce(batch, out)
	}
}

// buckets counts a call in the hour and day of its start, in the
// platform's time zone.
func (s *Service) buckets(start time.Time) (hour, day time.Time) {
	return hourStart(start, s.loc), dayStart(start, s.loc)
}

// announce sends the changes a committed batch made to the feed: a start
// or answer of a call still live (or ended in the same batch), and the
// end that wrote a call's record; each once per batch.
func (s *Service) announce(batch []*op, out records.CallOutcome) {
	type key struct {
		id   string
		kind string
	}
	sent := map[key]bool{}
	for _, o := range batch {
		if !o.isStep {
			continue
		}
		id := o.step.Call.ID
		var (
			kind string
			c    records.Call
			ok   bool
		)
		switch o.step.Kind {
		case records.CallStart, records.CallAnswer:
			kind = ChangeStarted
			if o.step.Kind == records.CallAnswer {
				kind = ChangeAnswered
			}
			if c, ok = out.Live[id]; !ok {
				c, ok = out.Ended[id]
			}
		case records.CallEnd:
			kind = ChangeEnded
			c, ok = out.Ended[id]
		}
		if !ok || sent[key{id, kind}] {
			continue
		}
		sent[key{id, kind}] = true
		ch := Change{Kind: kind, Call: s.cdr(c)}
		s.feed.publish(ch)
		if s.opts.Publish != nil {
			s.opts.Publish(ch)
		}
	}
}

// maintain runs the sweeps every MaintainEvery: log lines past their
// retention, live calls nobody ended.
func (s *Service) maintain(ctx context.Context) {
	t := time.NewTicker(s.opts.MaintainEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.PurgeLogs(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("cdr: log retention", "err", err)
		}
		if _, err := s.EndStaleCalls(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("cdr: stale calls", "err", err)
		}
	}
}

// PurgeLogs deletes the log lines older than the retention, in batches,
// and returns how many.
func (s *Service) PurgeLogs(ctx context.Context) (int64, error) {
	if s.opts.LogRetention < 0 {
		return 0, nil
	}
	return s.db.DeleteLogLinesBefore(ctx, s.opts.Now().Add(-s.opts.LogRetention), 10000)
}

// EndStaleCalls ends, with status 408 at the time of the sweep, the live
// calls that started more than MaxCallDuration ago, and returns how many
// it ended. Two nodes sweeping at once end each call once.
func (s *Service) EndStaleCalls(ctx context.Context) (int, error) {
	if s.opts.MaxCallDuration < 0 {
		return 0, nil
	}
	n := 0
	for {
		now := s.opts.Now()
		stale, err := s.db.StaleLiveCalls(ctx, now.Add(-s.opts.MaxCallDuration), 500)
		if err != nil || len(stale) == 0 {
			return n, err
		}
		var wg sync.WaitGroup
		errs := make([]error, len(stale))
		for i, c := range stale {
			wg.Go(func() {
				errs[i] = s.submit(ctx, &op{step: records.CallStep{Kind: records.CallEnd, Call: records.Call{
					ID: c.ID, CallID: c.CallID, FromTag: c.FromTag, End: now.Truncate(time.Millisecond), Status: 408,
				}}, isStep: true})
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return n, err
		}
		n += len(stale)
		if len(stale) < 500 {
			return n, nil
		}
	}
}

// RebuildRollups counts the statistics again from the call records, in
// this service's time zone, which becomes the database's: after a change
// of time zone (on every node at once), or to repair them.
func (s *Service) RebuildRollups(ctx context.Context) error {
	return s.db.RebuildRollups(ctx, s.loc.String(), s.buckets)
}
