package breakout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/service"
	"github.com/convene/convene/internal/store"
)

// Options tune the service. Zero values take the defaults given.
type Options struct {
	// Instance names this instance (in sessions and the store's beat
	// index); default "bms-" and random hex.
	Instance string
	// SpeakerLimit is the most speakers of the main room; default 16.
	SpeakerLimit int
	// MaxRooms and MaxUsers bound a plan; defaults 200 and 5000.
	MaxRooms int
	MaxUsers int
	// MaxDelay is the longest closing countdown; default 1 h.
	MaxDelay time.Duration
	// CountdownCheck is how often every instance looks for countdowns
	// that are due (those of a dead instance included); default 100 ms.
	CountdownCheck time.Duration
	// SweepInterval is how often an instance beats, removes the state of
	// ended conferences and takes the users of dead instances out of
	// their conferences; default 1 s. InstanceTTL is how long an instance
	// may go without a beat before it counts as dead; default 5 s.
	SweepInterval time.Duration
	InstanceTTL   time.Duration
	// TicketTTL is how long a WebSocket ticket is valid: the time from
	// asking for it to connecting with it, once; default 60 s.
	TicketTTL time.Duration
	// TicketSecret signs tickets; default a secret shared by every
	// instance through the store.
	TicketSecret []byte
	// ClientQueue is how many messages may wait for a slow client before
	// it is disconnected; default 4096.
	ClientQueue int
	// WriteTimeout bounds one write to a client; default 10 s.
	WriteTimeout time.Duration
	// Retries bounds the attempts of a change that keeps meeting changes
	// of other instances; default 16.
	Retries int
	// OriginPatterns are the hosts (path.Match patterns) of web pages
	// allowed to open a WebSocket from another origin; by default only
	// pages of the API's own host and clients that send no Origin.
	OriginPatterns []string
}

func (o *Options) defaults() error {
	if o.Instance == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		o.Instance = "bms-" + hex.EncodeToString(b)
	}
	if !protocol.ValidToken(o.Instance) {
		return fmt.Errorf("%w: instance %q: use 1-64 letters, digits, '-' or '_'", ErrBadOptions, o.Instance)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.SpeakerLimit, 16)
	def(&o.MaxRooms, 200)
	def(&o.MaxUsers, 5000)
	def(&o.ClientQueue, 4096)
	def(&o.Retries, 16)
	defD(&o.MaxDelay, time.Hour)
	defD(&o.CountdownCheck, 100*time.Millisecond)
	defD(&o.SweepInterval, time.Second)
	defD(&o.InstanceTTL, 5*time.Second)
	defD(&o.TicketTTL, time.Minute)
	defD(&o.WriteTimeout, 10*time.Second)
	if o.InstanceTTL < 2*o.SweepInterval {
		return fmt.Errorf("%w: InstanceTTL %s must be at least two sweeps (%s)", ErrBadOptions, o.InstanceTTL, 2*o.SweepInterval)
	}
	return nil
}

// Store is what the service needs of the platform store.
type Store interface {
	Conference(ctx context.Context, e164 string) (protocol.Conference, error)
	Brief(ctx context.Context, e164s []string) (map[string]protocol.Conference, error)
	Breakout(ctx context.Context, e164 string) (store.BreakoutRecord, error)
	ApplyBreakout(ctx context.Context, c store.BreakoutChange) (int64, error)
	DeleteBreakout(ctx context.Context, e164 string) error
	BreakoutHead(ctx context.Context, e164 string) (store.BreakoutHead, error)
	MarkBreakoutSent(ctx context.Context, e164 string, version int64) error
	DueBreakoutCountdowns(ctx context.Context, now int64) ([]string, error)
	BreakoutConferences(ctx context.Context) ([]string, error)
	WithBreakout(ctx context.Context, e164s []string) (map[string]bool, error)
	BeatBreakoutInstance(ctx context.Context, instance string, now int64) error
	BreakoutInstances(ctx context.Context) (map[string]int64, error)
	ForgetBreakoutInstance(ctx context.Context, instance string) error
	BreakoutSecret(ctx context.Context) ([]byte, error)
	RedeemTicket(ctx context.Context, id, redeemer string, until int64) (string, error)
	TicketAttempt(ctx context.Context, id string) (int64, error)
	ForgetTickets(ctx context.Context, now int64, limit int) (int, error)
}

// Deps are what the service uses.
type Deps struct {
	Bus   *bus.Bus
	Store Store
	Log   *slog.Logger
}

// Service is one instance of the breakout service.
//
// Lock order: a conference's cache lock (conf.mu), then the hub's lock,
// then the outbox's and the timers' locks, which take none. A client's
// close takes no lock of the service.
type Service struct {
	opts  Options
	bus   *bus.Bus
	store Store
	log   *slog.Logger
	now   func() time.Time

	secret []byte
	hub    *hub
	out    *outbox

	mu    sync.Mutex // guards confs
	confs map[string]*conf

	tmu    sync.Mutex // guards timers
	timers map[string]*time.Timer

	moves confQueue // conferences heard running on a node, not yet looked at
	ends  confQueue // conferences heard ended whose state is not yet removed

	life   service.Life   // the subscription, the outbox, countdown and sweep loops, ready
	connMu sync.Mutex     // orders a WebSocket handler's count against stop
	conns  sync.WaitGroup // WebSocket handlers running
	down   atomic.Bool    // stopped: set under connMu
}

// conf is what an instance caches of a conference: its state and plan as
// of the last change it saw. Changes of other instances make it stale;
// the store's version check catches that.
type conf struct {
	mu   sync.Mutex
	st   *State // nil: not loaded
	plan *Plan
}

// New checks the options and dependencies and builds a service that is not
// started.
func New(opts Options, deps Deps) (*Service, error) {
	if deps.Bus == nil || deps.Store == nil {
		return nil, fmt.Errorf("%w: Bus and Store are required", ErrBadOptions)
	}
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		opts: opts, bus: deps.Bus, store: deps.Store, now: time.Now,
		log:    deps.Log.With("service", "breakout", "instance", opts.Instance),
		confs:  map[string]*conf{},
		timers: map[string]*time.Timer{},
	}
	s.hub = newHub(s)
	s.out = newOutbox(s.bus, s.log, s.markSent)
	s.moves.init()
	s.ends.init()
	s.life.Init("breakout "+opts.Instance, s.bus, s.log)
	return s, nil
}

// Instance is this instance's name.
func (s *Service) Instance() string { return s.opts.Instance }

// Ready reports whether the service is started and serving.
func (s *Service) Ready() bool { return s.life.Ready() }

// Start loads the ticket secret, subscribes to the conferences' life on
// the bus and starts the countdown and sweep loops. It does not block; a
// second Start returns ErrStarted.
func (s *Service) Start(ctx context.Context) error {
	return s.life.Start(ErrStarted, func() error { return s.start(ctx) })
}

func (s *Service) start(ctx context.Context) error {
	s.secret = s.opts.TicketSecret
	if len(s.secret) == 0 {
		sec, err := s.store.BreakoutSecret(ctx)
		if err != nil {
			return fmt.Errorf("breakout: start: %w", err)
		}
		s.secret = sec
	}
	if err := s.store.BeatBreakoutInstance(ctx, s.opts.Instance, s.now().UnixMilli()); err != nil {
		return fmt.Errorf("breakout: start: %w", err)
	}
	if _, err := s.life.Subscribe(s.bus, protocol.SubjectCMNotifications, bus.HandlerFunc(s.onConfNtf), bus.Concurrent(8)); err != nil {
		return fmt.Errorf("breakout: start: %w", err)
	}
	if err := s.life.Confirm(ctx, s.bus); err != nil {
		return fmt.Errorf("breakout: start: %w", err)
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.life.Go(func() { <-s.life.Done(); cancel() })
	s.life.Go(func() { s.out.run(loopCtx) })
	s.life.Go(func() { s.countdownLoop(loopCtx) })
	s.life.Go(func() { s.sweepLoop(loopCtx) })
	s.life.Go(func() { s.moveLoop(loopCtx) })
	s.life.Go(func() { s.endLoop(loopCtx) })
	s.log.Info("breakout service started", "speakerLimit", s.opts.SpeakerLimit)
	return nil
}

// Shutdown stops the service: its clients are told to reconnect (to
// another instance) and disconnected, its loops end, and its beat is set
// to the epoch so that the other instances' next sweep takes out of their
// conferences the users who did not come back.
func (s *Service) Shutdown(ctx context.Context) error {
	if !s.stop(ctx) {
		return nil
	}
	s.hub.closeAll(statusGoingAway, "the breakout service is shutting down: reconnect")
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	err := s.store.BeatBreakoutInstance(ctx, s.opts.Instance, 0)
	s.log.Info("breakout service shut down")
	if err != nil {
		return fmt.Errorf("breakout: shutdown: %w", err)
	}
	return nil
}

// killTimeout bounds Kill's wait for the loops.
const killTimeout = 10 * time.Second

// Kill stops the service as a crash would: connections drop, loops end,
// nothing is said to anyone and the store is left as it is. For tests and
// drills.
func (s *Service) Kill() {
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	if !s.stop(ctx) {
		return
	}
	s.hub.dropAll()
	s.log.Info("breakout service killed")
}

// stop ends the subscription and the loops; false if the service is not
// serving (not started, or stopped already). ctx bounds the wait for the
// loops.
func (s *Service) stop(ctx context.Context) bool {
	s.connMu.Lock()
	if !s.life.Ready() || s.down.Load() {
		s.connMu.Unlock()
		return false
	}
	s.down.Store(true)
	s.connMu.Unlock()
	if err := s.life.Shutdown(ctx); err != nil {
		s.log.Warn("breakout service stop", "err", err)
	}
	s.tmu.Lock()
	for k, t := range s.timers {
		t.Stop()
		delete(s.timers, k)
	}
	s.tmu.Unlock()
	return true
}

func (s *Service) rules() rules {
	return rules{
		now: s.now().UnixMilli(), speakerLimit: s.opts.SpeakerLimit, maxRooms: s.opts.MaxRooms,
		maxUsers: s.opts.MaxUsers, maxDelay: uint32(s.opts.MaxDelay / time.Second),
	}
}

func (s *Service) conf(e164 string) *conf {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.confs[e164]
	if c == nil {
		c = &conf{}
		s.confs[e164] = c
	}
	return c
}

// markSent records in the store that a plan version went to the node.
func (s *Service) markSent(e164 string, version int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.MarkBreakoutSent(ctx, e164, version); err != nil {
		s.log.Debug("plan version sent not recorded", "e164", e164, "version", version, "err", err)
	}
}

// holds reports whether the cache has an entry for a conference.
func (s *Service) holds(e164 string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.confs[e164] != nil
}

// forget drops a conference from the cache.
func (s *Service) forget(e164 string) {
	s.mu.Lock()
	delete(s.confs, e164)
	s.mu.Unlock()
}

// load reads a conference's state from the store into the cache.
func (s *Service) load(ctx context.Context, c *conf, e164 string) error {
	rec, err := s.store.Breakout(ctx, e164)
	if err != nil {
		return err
	}
	st, err := decodeRecord(rec)
	if err != nil {
		return err
	}
	c.st, c.plan = st, Derive(st)
	return nil
}

// fresh makes sure the cache holds the stored version; it reports
// whether it had to reload.
func (s *Service) fresh(ctx context.Context, c *conf, e164 string) (reloaded bool, err error) {
	if c.st == nil {
		return true, s.load(ctx, c, e164)
	}
	h, err := s.store.BreakoutHead(ctx, e164)
	if err != nil {
		return false, err
	}
	if h.Version == c.st.Version {
		return false, nil
	}
	return true, s.load(ctx, c, e164)
}

// command is an operation with what it needs.
type command struct {
	// cond is the store's condition on the conference ("exists",
	// "running").
	cond string
	run  func(r rules, st *State) outcome
	// refuse builds the requester's notify for a failure outside the
	// operation (store, conference ended).
	refuse func(status uint32, msg string) any
}

// exec runs a command against the stored state, persists its change,
// sends the audio plan's change to the node and broadcasts the
// notifications. Failures outside the operation come back as an outcome
// with a status and the command's refusal.
func (s *Service) exec(ctx context.Context, e164 string, cmd command) outcome {
	out, err := s.change(ctx, e164, cmd)
	if err == nil {
		return out
	}
	status, msg := uint32(protocol.BreakoutInternal), "the breakout service failed: "+err.Error()+"; retry later"
	switch {
	case errors.Is(err, store.ErrConfNotFound):
		status, msg = protocol.BreakoutConfEnded, "conference "+e164+" does not run any more"
		if cmd.cond == "running" {
			status = protocol.BreakoutConfNotRunning
		}
		s.ended(e164, true)
	case errors.Is(err, store.ErrConfNotRunning):
		status, msg = protocol.BreakoutConfNotRunning, "conference "+e164+" is not running (waiting for a restore?): retry when it runs"
	case errors.Is(err, ErrBusy):
		status, msg = protocol.BreakoutBusy, "the breakout state of "+e164+" kept changing under the request: retry"
	default:
		s.log.Warn("breakout change failed", "e164", e164, "err", err)
	}
	out = outcome{status: status}
	if cmd.refuse != nil {
		out.reply = cmd.refuse(status, msg)
	}
	return out
}

// change is exec's core, under the conference's lock so that one
// instance's changes and notifications of a conference keep their order.
func (s *Service) change(ctx context.Context, e164 string, cmd command) (outcome, error) {
	c := s.conf(e164)
	c.mu.Lock()
	defer c.mu.Unlock()
	stale := c.st == nil
	for range s.opts.Retries {
		loaded := false
		if stale {
			if err := s.load(ctx, c, e164); err != nil {
				return outcome{}, err
			}
			loaded, stale = true, false
		}
		r := s.rules()
		prev, next := c.st, c.st.Clone()
		out := cmd.run(r, next)
		if out.status == protocol.BreakoutOK {
			r.settle(prev, next, &out)
		}
		ch, changed, err := encodeChange(prev, next, cmd.cond, r.now)
		if err != nil {
			return outcome{}, err
		}
		if out.status != protocol.BreakoutOK || !changed {
			// Nothing to write: make sure the answer came from the
			// stored state, not a stale copy.
			if !loaded {
				reloaded, err := s.fresh(ctx, c, e164)
				if err != nil {
					return outcome{}, err
				}
				if reloaded {
					continue // fresh now: redo
				}
			}
			s.broadcast(e164, c.st.Version, out.notes, out.kick)
			return out, nil
		}
		if next.Meta.Node == "" {
			if cf, err := s.store.Conference(ctx, e164); err == nil && cf.State == protocol.StateRunning {
				next.Meta.Node = cf.Node
				if ch, _, err = encodeChange(prev, next, cmd.cond, r.now); err != nil {
					return outcome{}, err
				}
			}
		}
		v, err := s.store.ApplyBreakout(ctx, ch)
		if errors.Is(err, store.ErrBreakoutConflict) {
			stale = true
			continue
		}
		if err != nil {
			return outcome{}, err
		}
		next.Version = v
		plan := Derive(next)
		delta := Diff(c.plan, plan)
		if out.full || prev.Version == 0 || prev.Meta.Node != next.Meta.Node {
			delta = Full(plan)
		}
		c.st, c.plan = next, plan
		s.out.push(e164, next.Meta.Node, v, plan, delta)
		s.broadcast(e164, v, out.notes, out.kick)
		s.schedule(e164, prev, next)
		return out, nil
	}
	return outcome{}, ErrBusy
}

// read runs f on the stored state of a conference (f must not change it).
func (s *Service) read(ctx context.Context, e164 string, f func(st *State, p *Plan)) error {
	c := s.conf(e164)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := s.fresh(ctx, c, e164); err != nil {
		return err
	}
	f(c.st, c.plan)
	return nil
}

// Snapshot returns a copy of a conference's stored state and its plan.
func (s *Service) Snapshot(ctx context.Context, e164 string) (*State, *Plan, error) {
	var (
		st *State
		p  *Plan
	)
	err := s.read(ctx, e164, func(cur *State, plan *Plan) { st, p = cur.Clone(), plan })
	return st, p, err
}
