package resources

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

// Options configure RMS. Zero durations and counts take the defaults.
type Options struct {
	// Platform is the moid of the platform this RMS serves.
	Platform string
	// Rooms are the platform's server rooms; their order breaks ties when
	// choosing the preferred room.
	Rooms []Room
	// HeartbeatInterval is how often nodes must beat; told to them in the
	// register ACK. Default 200 ms.
	HeartbeatInterval time.Duration
	// MissedHeartbeats: a node is down once HeartbeatInterval ×
	// MissedHeartbeats passed without a beat. Default 4: with the default
	// interval, a node that stops beating is down 800 ms after its last
	// beat (and the watcher's timer latency) unless RMS is starved.
	MissedHeartbeats int
	// ConfListInterval is how often nodes report their conference list to
	// the scheduler; told to them in the register ACK. Default 5 s.
	ConfListInterval time.Duration
	// Concurrency bounds the GET_RES_REQ and list requests handled at
	// once. Default 64.
	Concurrency int
	// Events, when set, is a system connection to the same bus (bus.Options
	// System) on which RMS hears application connections end and start.
	// A node whose connection (named NodeConnName(id)) ends goes down after
	// DisconnectGrace unless it reconnects or beats meanwhile, long before
	// its heartbeat deadline. The connection's client IDs must come from
	// one server (the embedded one), as they are compared.
	Events *bus.Bus
	// DisconnectGrace is how long a node whose bus connection ended may
	// take to reconnect or beat before it is down. It should be at least
	// one HeartbeatInterval, so that a beat covers a reconnection RMS did
	// not hear of. Default HeartbeatInterval.
	DisconnectGrace time.Duration
	// OverloadLag: a liveness check that runs this much later than due
	// means RMS's process is starved of CPU, and the heartbeats on their
	// way to it late too; nobody is taken down until the checks run on
	// time again, and every node gets a fresh heartbeat window. Default
	// half a HeartbeatInterval.
	OverloadLag time.Duration
	// OverloadHold bounds how long one starved spell, or a backlog of
	// node messages RMS has received and not yet handled, suspends
	// take-downs: past it nodes go down on their deadlines again, so that
	// a frozen node is found however loaded the machine. Default 5 s.
	OverloadHold time.Duration
}

func (o *Options) defaults() {
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = 200 * time.Millisecond
	}
	if o.DisconnectGrace == 0 {
		o.DisconnectGrace = o.HeartbeatInterval
	}
	if o.MissedHeartbeats == 0 {
		o.MissedHeartbeats = 4
	}
	if o.OverloadLag == 0 {
		o.OverloadLag = o.HeartbeatInterval / 2
	}
	if o.OverloadHold == 0 {
		o.OverloadHold = 5 * time.Second
	}
	if o.ConfListInterval == 0 {
		o.ConfListInterval = 5 * time.Second
	}
	if o.Concurrency == 0 {
		o.Concurrency = 64
	}
}

func (o *Options) validate() error {
	if err := config.ValidateRooms(o.Platform, o.Rooms); err != nil {
		return fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	switch {
	case o.HeartbeatInterval < 0:
		return fmt.Errorf("%w: heartbeat interval %s is negative", ErrBadOptions, o.HeartbeatInterval)
	case o.MissedHeartbeats < 1:
		return fmt.Errorf("%w: missed heartbeats %d must be at least 1", ErrBadOptions, o.MissedHeartbeats)
	case o.ConfListInterval < 0:
		return fmt.Errorf("%w: conference-list interval %s is negative", ErrBadOptions, o.ConfListInterval)
	case o.DisconnectGrace < 0:
		return fmt.Errorf("%w: disconnect grace %s is negative", ErrBadOptions, o.DisconnectGrace)
	case o.OverloadLag < 0:
		return fmt.Errorf("%w: overload lag %s is negative", ErrBadOptions, o.OverloadLag)
	case o.OverloadHold < 0:
		return fmt.Errorf("%w: overload hold %s is negative", ErrBadOptions, o.OverloadHold)
	case o.Concurrency < 1:
		return fmt.Errorf("%w: concurrency %d must be at least 1", ErrBadOptions, o.Concurrency)
	}
	return nil
}

// Service is the RMS of one platform.
//
// Lock order: life (held through Start and Shutdown), then mu, then qmu.
// Nothing is published, logged at length or handed to a hook while mu is
// held: transitions found under mu are queued (under qmu, which keeps their
// order) and delivered by one goroutine.
type Service struct {
	opts     Options
	bus      *bus.Bus
	log      *slog.Logger
	deadline time.Duration   // HeartbeatInterval × MissedHeartbeats
	period   time.Duration   // longest the watcher sleeps
	guard    guard           // the watcher's overload guard
	backlog  func() int      // node messages received and not yet handled; set by Start
	rearm    chan struct{}   // capacity 1: a deadline earlier than the watcher's came up
	roomIdx  map[string]int  // room moid → index in rooms; fixed after New
	fresh    time.Time       // until then RMS may not have heard every live node (fresh.go); set by Start
	life     service.Life    // subscriptions, watcher and notifier, ready
	stop     <-chan struct{} // life.Done()

	mu      sync.RWMutex
	rooms   []roomState       // configured order
	nodes   map[string]*node  // by node id
	order   []*node           // every node, sorted by room index then id
	resetAt time.Time         // heartbeat deadlines run from no earlier than this
	conns   map[string]uint64 // node id → newest client ID of its bus connection

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
		rearm:    make(chan struct{}, 1),
		nodes:    make(map[string]*node),
		conns:    make(map[string]uint64),
		wake:     make(chan struct{}, 1),
	}
	s.life.Init("rms "+opts.Platform, b, s.log)
	s.stop = s.life.Done()
	s.period = max(opts.HeartbeatInterval/4, time.Millisecond)
	s.guard = guard{lag: opts.OverloadLag, hold: opts.OverloadHold, calm: s.deadline}
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

// Start subscribes to the platform's RMS subjects (and to connection
// events, with Options.Events) and starts the liveness watcher. It returns
// once the bus confirmed the subscriptions; ctx bounds that wait only. The
// service runs until Shutdown.
func (s *Service) Start(ctx context.Context) error {
	err := s.life.Start(ErrStarted, func() error { return s.start(ctx) })
	if err != nil {
		return err
	}
	s.log.Info("rms ready", "rooms", len(s.rooms),
		"heartbeat", s.opts.HeartbeatInterval, "missed", s.opts.MissedHeartbeats,
		"connection_events", s.opts.Events != nil, "disconnect_grace", s.opts.DisconnectGrace,
		"overload_lag", s.opts.OverloadLag, "overload_hold", s.opts.OverloadHold)
	return nil
}

func (s *Service) start(ctx context.Context) error {
	s.fresh = time.Now().Add(min(s.deadline, freshCap))
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

	// Serial: a node's register, beats and unregister apply in order.
	nodeSub, err := s.life.Subscribe(s.bus, protocol.SubjectRMSNodes(s.opts.Platform), nodes)
	if err != nil {
		return err
	}
	if _, err := s.life.Subscribe(s.bus, protocol.SubjectRMS(s.opts.Platform), requests, bus.Concurrent(s.opts.Concurrency)); err != nil {
		return err
	}
	if _, err := s.life.Subscribe(s.bus, protocol.SubjectServerRoomNotify, monitor); err != nil {
		return err
	}
	// What nodes say reaches RMS on the node subject and, with Events, as
	// connection events: the watcher waits for those in hand.
	inbound := []*bus.Subscription{nodeSub}
	if s.opts.Events != nil {
		// One serial subscription for both kinds: a connection's CONNECT
		// and DISCONNECT are handled in the order the server sent them.
		events, err := s.life.Subscribe(s.opts.Events, bus.ConnEventsSubject(bus.AppAccount, "*"),
			bus.HandlerFunc(s.handleConnEvent))
		if err != nil {
			return err
		}
		inbound = append(inbound, events)
	}
	s.backlog = func() int {
		n := 0
		for _, sub := range inbound {
			n += sub.Pending()
		}
		return n
	}
	if err := s.life.Confirm(ctx, s.bus, s.opts.Events); err != nil {
		return err
	}
	s.life.Go(s.watchLoop)
	s.life.Go(s.notifyLoop)
	return nil
}

// Ready reports whether the service is serving.
func (s *Service) Ready() bool { return s.life.Ready() }

// Shutdown stops serving, delivers the transitions already found, and
// waits for its goroutines until ctx ends. Nodes are not announced down:
// RMS stopping says nothing about them. Once Shutdown returns, the server
// has the last notices and knows that nobody answers here.
func (s *Service) Shutdown(ctx context.Context) error { return s.life.Shutdown(ctx) }

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
