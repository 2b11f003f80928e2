package platform

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// Room is a server room of the platform.
type Room struct {
	Moid string
	Name string
	// Type is the seed's room type: 0 main, 1 secondary.
	Type int
}

// Options configure PMS. Zero durations and counts take the defaults.
type Options struct {
	// Platform is the moid of the platform this PMS monitors.
	Platform string
	// Rooms are the platform's server rooms, in the order they are listed.
	Rooms []Room
	// DisableAutoRoomFailure turns automatic failure and recovery off:
	// rooms then change state only when an operator says so. By default a
	// room whose every known MCU node is down (having had at least one)
	// fails by itself and recovers by itself when one comes back.
	DisableAutoRoomFailure bool
	// BroadcastInterval is how often the full room state is broadcast
	// even when nothing changed. Default 5 s.
	BroadcastInterval time.Duration
	// ResyncInterval is how often PMS reads RMS's node list to correct
	// what notices missed; a node absent from RMS's lists for this long is
	// taken as down. Until the first list arrives PMS asks every second.
	// Default 30 s.
	ResyncInterval time.Duration
	// NodeListTimeout bounds each RMS_NODELIST_REQ. Default 2 s.
	NodeListTimeout time.Duration
	// Concurrency bounds the requests handled at once. Default 16.
	Concurrency int
	// State, when set, keeps the operators' decisions across restarts:
	// the rooms they failed, the platform's own state when they switched
	// it over, the DR modes they set. Without it a restarted PMS forgets
	// them.
	State StateStore

	// Self is this platform as PLATFORM_CONFIG_NOTIFY tells it; its Moid
	// defaults to Platform (and Platform to it) and must be the same.
	Self PlatformSpec
	// Masters are the platforms whose conferences this one takes over
	// when they fail; Backups those that take this one's over. A platform
	// may be both (two platforms backing each other up).
	Masters []PlatformSpec
	Backups []PlatformSpec
	// Peers is a connection to the bus of each master and backup, by
	// moid; PMS polls each platform's PMS over it. A platform missing
	// here is unreachable. The caller owns them: PMS does not close them.
	Peers map[string]*bus.Bus
	// PollInterval is how often each master and backup is asked for its
	// state, and how long an answer is waited for. Default 250 ms.
	PollInterval time.Duration
	// MissedPolls is how many polls in a row a platform leaves unanswered
	// before it is unreachable. Default 4.
	MissedPolls int
	// DRModes are the masters' DR modes at the start, by moid; default
	// automatic. A mode an operator set since, when State is given, wins.
	DRModes map[string]string
}

func (o *Options) defaults() {
	if o.BroadcastInterval == 0 {
		o.BroadcastInterval = 5 * time.Second
	}
	if o.ResyncInterval == 0 {
		o.ResyncInterval = 30 * time.Second
	}
	if o.NodeListTimeout == 0 {
		o.NodeListTimeout = 2 * time.Second
	}
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	if o.Platform == "" {
		o.Platform = o.Self.Moid
	}
	if o.Self.Moid == "" {
		o.Self.Moid = o.Platform
	}
	if o.PollInterval == 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.MissedPolls == 0 {
		o.MissedPolls = 4
	}
}

func (o *Options) validate() error {
	if !protocol.ValidToken(o.Platform) {
		return fmt.Errorf("%w: platform moid %q: use 1-64 letters, digits, '-' or '_'", ErrBadOptions, o.Platform)
	}
	if len(o.Rooms) == 0 {
		return fmt.Errorf("%w: platform %q has no server rooms: list at least one", ErrBadOptions, o.Platform)
	}
	seen := make(map[string]bool, len(o.Rooms))
	for _, r := range o.Rooms {
		if !protocol.ValidToken(r.Moid) {
			return fmt.Errorf("%w: room moid %q: use 1-64 letters, digits, '-' or '_'", ErrBadOptions, r.Moid)
		}
		if seen[r.Moid] {
			return fmt.Errorf("%w: room %q is listed twice", ErrBadOptions, r.Moid)
		}
		seen[r.Moid] = true
		if r.Type != 0 && r.Type != 1 {
			return fmt.Errorf("%w: room %q: type %d must be 0 (main) or 1 (secondary)", ErrBadOptions, r.Moid, r.Type)
		}
	}
	switch {
	case o.BroadcastInterval < 0:
		return fmt.Errorf("%w: broadcast interval %s is negative", ErrBadOptions, o.BroadcastInterval)
	case o.ResyncInterval < 0:
		return fmt.Errorf("%w: resync interval %s is negative", ErrBadOptions, o.ResyncInterval)
	case o.NodeListTimeout < 0:
		return fmt.Errorf("%w: node list timeout %s is negative", ErrBadOptions, o.NodeListTimeout)
	case o.Concurrency < 1:
		return fmt.Errorf("%w: concurrency %d must be at least 1", ErrBadOptions, o.Concurrency)
	}
	return o.validatePlatforms()
}

// Service is the PMS of one platform.
//
// Lock order: life, then saveMu or pubMu (never both), then mu; pl.hookMu
// is taken alone. Nothing is published, saved or logged while mu is held:
// changes found under mu are returned as transitions (platformChanges for
// platforms) and announced after it is released.
type Service struct {
	opts     Options
	bus      *bus.Bus
	log      *slog.Logger
	roomIdx  map[string]int // room moid → index in rooms; fixed after New
	started  atomic.Bool    // Start was called
	ready    atomic.Bool    // serving
	stop     chan struct{}  // closed by Shutdown
	stopOnce sync.Once      // closes stop
	wg       sync.WaitGroup // broadcaster, node syncer, pollers, hook caller
	resync   chan struct{}  // capacity 1: read RMS's node list now

	life sync.Mutex // guards subs
	subs []*bus.Subscription

	saveMu sync.Mutex // saves go out one at a time, the newest last
	pubMu  sync.Mutex // broadcasts too, so none carries an older state than the one before

	mu     sync.Mutex
	rooms  []room           // configured order
	nodes  map[string]*node // by node id
	gen    uint64           // node notices applied so far
	synced bool             // RMS's node list was read at least once

	pl platforms // own state, masters and backups (platforms.go)
}

// New checks the options and builds a PMS; Start makes it serve. Every
// room starts normal.
func New(opts Options, b *bus.Bus, log *slog.Logger) (*Service, error) {
	opts.defaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("%w: no bus connection", ErrBadOptions)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		opts:    opts,
		bus:     b,
		log:     log.With("service", "pms", "platform", opts.Platform),
		roomIdx: make(map[string]int, len(opts.Rooms)),
		stop:    make(chan struct{}),
		resync:  make(chan struct{}, 1),
		nodes:   make(map[string]*node),
	}
	s.opts.Rooms = append([]Room(nil), opts.Rooms...)
	now := time.Now()
	s.initPlatforms(now)
	for i, r := range s.opts.Rooms {
		if r.Name == "" {
			r.Name = r.Moid
		}
		s.roomIdx[r.Moid] = i
		s.rooms = append(s.rooms, room{Room: r, state: protocol.RoomNormal, since: now})
	}
	return s, nil
}

// Start restores the operators' saved decisions, subscribes to RMS's node
// notices, reads RMS's node list (an RMS that is not there is no error: PMS
// keeps asking in the background), then serves requests, broadcasts the
// room and platform state and keeps broadcasting them, and starts polling
// the masters and backups. It returns once the bus confirmed the
// subscriptions; ctx bounds that wait and the first node list. It does not
// wait for any master or backup: one that is down is unreachable after
// MissedPolls.
func (s *Service) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	if err := s.restore(ctx); err != nil {
		return err
	}
	s.life.Lock()
	defer s.life.Unlock()

	notices := bus.NewMux(s.log.Debug)
	notices.HandleFunc(protocol.RMSNodeStateNtf, s.handleNodeState)
	// Serial: a node's notices apply in the order RMS sent them.
	if err := s.subscribe(protocol.SubjectRMSNotify(s.opts.Platform), notices); err != nil {
		return err
	}
	if err := s.bus.Flush(ctx); err != nil {
		s.unsubscribe()
		return fmt.Errorf("pms %s: confirm subscriptions: %w", s.opts.Platform, err)
	}
	if err := s.syncNodes(ctx); err != nil {
		s.log.Info("pms could not read RMS's node list; it learns nodes from RMS's notices and asks again", "err", err)
	}

	requests := bus.NewMux(s.log.Warn)
	requests.HandleFunc(protocol.ServerRoomStateRq, s.handleRoomState)
	requests.HandleFunc(protocol.ServerRoomSetRq, s.handleRoomSet)
	requests.HandleFunc(protocol.PlatformStateRq, s.handlePlatformState)
	requests.HandleFunc(protocol.PlatformConfigRq, s.handlePlatformConfig)
	requests.HandleFunc(protocol.PlatformSetRq, s.handlePlatformSet)
	requests.HandleFunc(protocol.PlatformDRSetRq, s.handleDRSet)
	if err := s.subscribe(protocol.SubjectPMS(s.opts.Platform), requests, bus.Concurrent(s.opts.Concurrency)); err != nil {
		return err
	}
	if err := s.bus.Flush(ctx); err != nil {
		s.unsubscribe()
		return fmt.Errorf("pms %s: confirm subscriptions: %w", s.opts.Platform, err)
	}
	s.broadcast()
	s.broadcastPlatform()
	s.wg.Add(3)
	go s.broadcastLoop()
	go s.syncLoop()
	go s.hookLoop()
	s.startPolls()
	s.ready.Store(true)
	s.kickHooks()
	s.log.Info("pms ready", "rooms", len(s.rooms), "auto_room_failure", !s.opts.DisableAutoRoomFailure,
		"broadcast", s.opts.BroadcastInterval, "masters", len(s.pl.masters), "backups", len(s.pl.backups),
		"poll", s.opts.PollInterval, "missed_polls", s.opts.MissedPolls)
	return nil
}

// subscribe adds a subscription; the caller holds life. On failure it
// drops the ones made so far.
func (s *Service) subscribe(subject string, h bus.Handler, opts ...bus.SubOption) error {
	sub, err := s.bus.Subscribe(subject, h, opts...)
	if err != nil {
		s.unsubscribe()
		return fmt.Errorf("pms %s: %w", s.opts.Platform, err)
	}
	s.subs = append(s.subs, sub)
	return nil
}

// Ready reports whether the service is serving.
func (s *Service) Ready() bool { return s.ready.Load() }

// Shutdown stops serving and waits for its goroutines until ctx ends. It
// broadcasts nothing: PMS stopping says nothing about the rooms, and the
// other services keep the last state they heard.
func (s *Service) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	s.life.Lock()
	had := len(s.subs) > 0
	s.unsubscribe()
	s.life.Unlock()
	s.stopOnce.Do(func() { close(s.stop) })
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("pms %s: shutdown: %w", s.opts.Platform, ctx.Err())
	}
	if had && s.bus.Connected() {
		if err := s.bus.Flush(ctx); err != nil {
			return fmt.Errorf("pms %s: shutdown: %w", s.opts.Platform, err)
		}
	}
	return nil
}

// unsubscribe drops the subscriptions; the caller holds life.
func (s *Service) unsubscribe() {
	for _, sub := range s.subs {
		if err := sub.Unsubscribe(); err != nil {
			s.log.Warn("pms unsubscribe failed", "err", err)
		}
	}
	s.subs = nil
}

// broadcast sends the state of every room on monitor.notify.server_room.
// The state is read under pubMu, so broadcasts never go backwards.
func (s *Service) broadcast() {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	ntf := s.roomNotice(protocol.ServerRoomStateNt)
	if err := s.bus.Publish(protocol.SubjectServerRoomNotify, ntf); err != nil {
		s.log.Error("pms could not broadcast the room state", "err", err)
	}
}

// broadcastLoop repeats the full state (rooms, then platforms), so that a
// service that missed a change (it restarted, the bus dropped it)
// converges.
func (s *Service) broadcastLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.BroadcastInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.broadcast()
			s.broadcastPlatform()
		}
	}
}

// syncLoop reads RMS's node list every ResyncInterval (every second until
// it got one), and at once when a notice named a node PMS did not know.
func (s *Service) syncLoop() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	lastErr := ""
	for {
		wait := s.opts.ResyncInterval
		if !s.isSynced() {
			wait = min(wait, time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-s.resync:
			t.Stop()
		case <-t.C:
		}
		err := s.syncNodes(ctx)
		switch {
		case err == nil:
			if lastErr != "" {
				s.log.Info("pms reads RMS's node list again")
			}
			lastErr = ""
		case ctx.Err() != nil:
			return
		case err.Error() != lastErr:
			lastErr = err.Error()
			s.log.Warn("pms could not read RMS's node list", "err", err)
		}
	}
}

// askResync wakes syncLoop without waiting.
func (s *Service) askResync() {
	select {
	case s.resync <- struct{}{}:
	default:
	}
}

func (s *Service) isSynced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}
