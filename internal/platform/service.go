package platform

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/service"
)

// Room is a server room of the platform: the topology's one room type.
type Room = config.Room

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
	// StartGrace is how long after PMS starts a platform that has never
	// answered may stay unanswered before it is unreachable: platforms
	// started together come up in any order, and a backup must not take
	// over a master that is still starting (its conferences would run
	// twice). Default 5 s; negative: none. A platform PMS has no
	// connection to is unreachable at once.
	StartGrace time.Duration
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
	if o.StartGrace == 0 {
		o.StartGrace = 5 * time.Second
	}
}

func (o *Options) validate() error {
	if err := config.ValidateRooms(o.Platform, o.Rooms); err != nil {
		return fmt.Errorf("%w: %w", ErrBadOptions, err)
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
// Lock order: life (held through Start and Shutdown), then saveMu or pubMu
// (never both), then mu; pl.hookMu is taken alone. Nothing is published,
// saved or logged while mu is held: changes found under mu are returned as
// transitions (platformChanges for platforms) and announced after it is
// released.
type Service struct {
	opts    Options
	bus     *bus.Bus
	log     *slog.Logger
	roomIdx map[string]int // room moid → index in rooms; fixed after New
	resync  chan struct{}  // capacity 1: read RMS's node list now

	life service.Life    // subscriptions; broadcaster, node syncer, pollers, hook caller; ready
	stop <-chan struct{} // life.Done()

	saveMu sync.Mutex // saves go out one at a time, the newest last
	pubMu  sync.Mutex // broadcasts too, so none carries an older state than the one before

	mu     sync.Mutex
	rooms  []room           // configured order
	nodes  map[string]*node // by node id
	gen    uint64           // node notices applied so far
	synced bool             // RMS's node list was read at least once
	// pollsFrom is when the polls of masters and backups started.
	pollsFrom time.Time

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
		resync:  make(chan struct{}, 1),
		nodes:   make(map[string]*node),
	}
	s.life.Init("pms "+opts.Platform, b, s.log)
	s.stop = s.life.Done()
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
// notices, serves requests, broadcasts the room and platform state and
// keeps broadcasting them, and starts reading RMS's node list and polling
// the masters and backups. It returns once the bus confirmed the
// subscriptions; ctx bounds that wait. It waits neither for the node list
// (a fresh RMS holds it back for up to a heartbeat deadline, and the
// platforms polling this one must not count it as down for that long;
// until PMS read one it fails no room by itself, see Synced) nor for any
// master or backup: one that is down is unreachable after MissedPolls.
func (s *Service) Start(ctx context.Context) error {
	err := s.life.Start(ErrStarted, func() error { return s.start(ctx) })
	if err != nil {
		return err
	}
	s.kickHooks()
	s.log.Info("pms ready", "rooms", len(s.rooms), "auto_room_failure", !s.opts.DisableAutoRoomFailure,
		"broadcast", s.opts.BroadcastInterval, "masters", len(s.pl.masters), "backups", len(s.pl.backups),
		"poll", s.opts.PollInterval, "missed_polls", s.opts.MissedPolls)
	return nil
}

func (s *Service) start(ctx context.Context) error {
	if err := s.restore(ctx); err != nil {
		return err
	}
	notices := bus.NewMux(s.log.Debug)
	notices.HandleFunc(protocol.RMSNodeStateNtf, s.handleNodeState)
	// Serial: a node's notices apply in the order RMS sent them.
	if _, err := s.life.Subscribe(s.bus, protocol.SubjectRMSNotify(s.opts.Platform), notices); err != nil {
		return err
	}
	requests := bus.NewMux(s.log.Warn)
	requests.HandleFunc(protocol.ServerRoomStateRq, s.handleRoomState)
	requests.HandleFunc(protocol.ServerRoomSetRq, s.handleRoomSet)
	requests.HandleFunc(protocol.PlatformStateRq, s.handlePlatformState)
	requests.HandleFunc(protocol.PlatformConfigRq, s.handlePlatformConfig)
	requests.HandleFunc(protocol.PlatformSetRq, s.handlePlatformSet)
	requests.HandleFunc(protocol.PlatformDRSetRq, s.handleDRSet)
	if _, err := s.life.Subscribe(s.bus, protocol.SubjectPMS(s.opts.Platform), requests, bus.Concurrent(s.opts.Concurrency)); err != nil {
		return err
	}
	if err := s.life.Confirm(ctx, s.bus); err != nil {
		return err
	}
	s.broadcast()
	s.broadcastPlatform()
	s.life.Go(s.broadcastLoop)
	s.life.Go(func() { s.syncLoop(true) })
	s.life.Go(s.hookLoop)
	s.startPolls()
	return nil
}

// Ready reports whether the service is serving.
func (s *Service) Ready() bool { return s.life.Ready() }

// Shutdown stops serving and waits for its goroutines until ctx ends. It
// broadcasts nothing: PMS stopping says nothing about the rooms, and the
// other services keep the last state they heard.
func (s *Service) Shutdown(ctx context.Context) error { return s.life.Shutdown(ctx) }

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

// syncLoop reads RMS's node list at once when first is set, then every
// ResyncInterval (every second until it got one), and at once when a
// notice named a node PMS did not know.
func (s *Service) syncLoop(first bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	lastErr := ""
	for {
		wait := s.opts.ResyncInterval
		if first {
			wait, first = 0, false
		} else if !s.isSynced() {
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

// Synced reports whether PMS has read RMS's node list since it started.
// Until then it fails no room by itself.
func (s *Service) Synced() bool { return s.isSynced() }

func (s *Service) isSynced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}
