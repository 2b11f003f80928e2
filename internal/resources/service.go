package resources

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

// Options configure RMS. Zero durations and counts take the defaults.
type Options struct {
	// Platform is the moid of the platform this RMS serves.
	Platform string
	// Rooms are the platform's server rooms; their order breaks ties when
	// choosing the preferred room.
	Rooms []Room
	// HeartbeatInterval is how often nodes must beat; told to them in the
	// register ACK. Default 500 ms.
	HeartbeatInterval time.Duration
	// MissedHeartbeats: a node is down once HeartbeatInterval ×
	// MissedHeartbeats passed without a beat. Default 3.
	MissedHeartbeats int
	// ConfListInterval is how often nodes report their conference list to
	// the scheduler; told to them in the register ACK. Default 5 s.
	ConfListInterval time.Duration
	// Concurrency bounds the GET_RES_REQ and list requests handled at
	// once. Default 64.
	Concurrency int
}

func (o *Options) defaults() {
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = 500 * time.Millisecond
	}
	if o.MissedHeartbeats == 0 {
		o.MissedHeartbeats = 3
	}
	if o.ConfListInterval == 0 {
		o.ConfListInterval = 5 * time.Second
	}
	if o.Concurrency == 0 {
		o.Concurrency = 64
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
	case o.HeartbeatInterval < 0:
		return fmt.Errorf("%w: heartbeat interval %s is negative", ErrBadOptions, o.HeartbeatInterval)
	case o.MissedHeartbeats < 1:
		return fmt.Errorf("%w: missed heartbeats %d must be at least 1", ErrBadOptions, o.MissedHeartbeats)
	case o.ConfListInterval < 0:
		return fmt.Errorf("%w: conference-list interval %s is negative", ErrBadOptions, o.ConfListInterval)
	case o.Concurrency < 1:
		return fmt.Errorf("%w: concurrency %d must be at least 1", ErrBadOptions, o.Concurrency)
	}
	return nil
}

// Service is the RMS of one platform.
//
// Lock order: life, then mu, then qmu. Nothing is published, logged at length or
// handed to a hook while mu is held: transitions found under mu are queued
// (under qmu, which keeps their order) and delivered by one goroutine.
type Service struct {
	opts     Options
	bus      *bus.Bus
	log      *slog.Logger
	deadline time.Duration  // HeartbeatInterval × MissedHeartbeats
	roomIdx  map[string]int // room moid → index in rooms; fixed after New
	started  atomic.Bool    // Start was called
	ready    atomic.Bool    // serving
	stop     chan struct{}  // closed by Shutdown
	stopOnce sync.Once      // closes stop
	wg       sync.WaitGroup // sweeper and notifier
	life     sync.Mutex     // guards subs
	subs     []*bus.Subscription

	mu    sync.RWMutex
	rooms []roomState      // configured order
	nodes map[string]*node // by node id
	order []*node          // every node, sorted by room index then id

	qmu   sync.Mutex
	queue []protocol.NodeStateNtf       // transitions not yet delivered
	hooks []func(protocol.NodeStateNtf) // in-process listeners
	wake  chan struct{}                 // capacity 1: the queue has news
}

// New checks the options and builds an RMS; Start makes it serve.
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
		opts:     opts,
		bus:      b,
		log:      log.With("service", "rms", "platform", opts.Platform),
		deadline: opts.HeartbeatInterval * time.Duration(opts.MissedHeartbeats),
		roomIdx:  make(map[string]int, len(opts.Rooms)),
		stop:     make(chan struct{}),
		nodes:    make(map[string]*node),
		wake:     make(chan struct{}, 1),
	}
	s.opts.Rooms = append([]Room(nil), opts.Rooms...)
	for i, r := range s.opts.Rooms {
		if r.Name == "" {
			r.Name = r.Moid
		}
		s.roomIdx[r.Moid] = i
		s.rooms = append(s.rooms, roomState{Room: r, state: protocol.RoomNormal})
	}
	return s, nil
}

// OnNodeState adds f to the in-process listeners of node transitions. f
// sees every RMS_NODE_STATE_NTF, in order, from one goroutine, after it was
// published; it may call the Service but should return quickly.
func (s *Service) OnNodeState(f func(protocol.NodeStateNtf)) {
	s.qmu.Lock()
	s.hooks = append(s.hooks, f)
	s.qmu.Unlock()
}

// Start subscribes to the platform's RMS subjects and starts the liveness
// sweeper. It returns once the bus confirmed the subscriptions; ctx bounds
// that wait only. The service runs until Shutdown.
func (s *Service) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	s.life.Lock()
	defer s.life.Unlock()
	nodes := bus.NewMux(s.log.Warn)
	nodes.HandleFunc(protocol.MCURegisterReq, s.handleRegister)
	nodes.HandleFunc(protocol.MCUHeartbeatNtf, s.handleHeartbeat)
	nodes.HandleFunc(protocol.MCUUnregisterNtf, s.handleUnregister)

	requests := bus.NewMux(s.log.Warn)
	requests.HandleFunc(protocol.RMSGetResReq, s.handleGetRes)
	requests.HandleFunc(protocol.RMSNodeListReq, s.handleNodeList)
	requests.HandleFunc(protocol.RMSRoomListReq, s.handleRoomList)

	monitor := bus.NewMux(s.log.Debug)
	monitor.HandleFunc(protocol.ServerRoomStateNt, s.handleServerRoomState)

	subs := []struct {
		subject string
		h       bus.Handler
		opts    []bus.SubOption
	}{
		// Serial: a node's register, beats and unregister apply in order.
		{protocol.SubjectRMSNodes(s.opts.Platform), nodes, nil},
		{protocol.SubjectRMS(s.opts.Platform), requests, []bus.SubOption{bus.Concurrent(s.opts.Concurrency)}},
		{protocol.SubjectServerRoomNotify, monitor, nil},
	}
	for _, sub := range subs {
		h, err := s.bus.Subscribe(sub.subject, sub.h, sub.opts...)
		if err != nil {
			s.unsubscribe()
			return fmt.Errorf("rms %s: %w", s.opts.Platform, err)
		}
		s.subs = append(s.subs, h)
	}
	if err := s.bus.Flush(ctx); err != nil {
		s.unsubscribe()
		return fmt.Errorf("rms %s: confirm subscriptions: %w", s.opts.Platform, err)
	}
	s.wg.Add(2)
	go s.sweepLoop()
	go s.notifyLoop()
	s.ready.Store(true)
	s.log.Info("rms ready", "rooms", len(s.rooms),
		"heartbeat", s.opts.HeartbeatInterval, "missed", s.opts.MissedHeartbeats)
	return nil
}

// Ready reports whether the service is serving.
func (s *Service) Ready() bool { return s.ready.Load() }

// Shutdown stops serving, delivers the transitions already found, and
// waits for its goroutines until ctx ends. Nodes are not announced down:
// RMS stopping says nothing about them.
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
		return fmt.Errorf("rms %s: shutdown: %w", s.opts.Platform, ctx.Err())
	}
	// Once Shutdown returns, the server has the last notices and knows that
	// nobody answers here. A connection that is down has nothing to tell.
	if had && s.bus.Connected() {
		if err := s.bus.Flush(ctx); err != nil {
			return fmt.Errorf("rms %s: shutdown: %w", s.opts.Platform, err)
		}
	}
	return nil
}

// unsubscribe drops the subscriptions; the caller holds life.
func (s *Service) unsubscribe() {
	for _, sub := range s.subs {
		if err := sub.Unsubscribe(); err != nil {
			s.log.Warn("rms unsubscribe failed", "err", err)
		}
	}
	s.subs = nil
}

// enqueue queues transitions for delivery; the caller holds mu, so the
// queue's order is the order in which the table changed.
func (s *Service) enqueue(ntfs ...protocol.NodeStateNtf) {
	s.qmu.Lock()
	s.queue = append(s.queue, ntfs...)
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// notifyLoop publishes queued transitions and hands them to the hooks.
func (s *Service) notifyLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.wake:
			s.deliver()
		case <-s.stop:
			s.deliver()
			return
		}
	}
}

func (s *Service) deliver() {
	s.qmu.Lock()
	batch, hooks := s.queue, s.hooks
	s.queue = nil
	s.qmu.Unlock()
	subject := protocol.SubjectRMSNotify(s.opts.Platform)
	for _, ntf := range batch {
		level := slog.LevelInfo
		if ntf.State == protocol.NodeDown {
			level = slog.LevelWarn
		}
		s.log.Log(context.Background(), level, "media node "+ntf.State,
			"node", ntf.Node, "ip", ntf.IP, "pid", ntf.PID, "room", ntf.Room, "reason", ntf.Reason)
		if err := s.bus.Publish(subject, ntf); err != nil {
			s.log.Error("rms could not announce node state", "node", ntf.Node, "state", ntf.State, "err", err)
		}
		for _, f := range hooks {
			f(ntf)
		}
	}
}
