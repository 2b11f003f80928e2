package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// Options tune a scheduler. Zero values take the defaults of
// config.Scheduler.
type Options struct {
	// Platform is the moid of the platform this scheduler serves.
	Platform           string
	NodeTimeout        time.Duration
	RMSTimeout         time.Duration
	EndCheckInterval   time.Duration
	WillEndNotice      time.Duration
	MonitorTTL         time.Duration
	MaxDurationMinutes int
	// ReleaseTimeout bounds the wait for a node to confirm a release; the
	// conference ends in the store whatever the node says.
	ReleaseTimeout time.Duration
	// Concurrency bounds the CM requests handled at once.
	Concurrency int
}

// OptionsFrom takes the tuning of a configuration.
func OptionsFrom(c *config.Config) Options {
	s := c.Scheduler
	return Options{
		Platform:           c.Platform,
		NodeTimeout:        s.NodeTimeout,
		RMSTimeout:         s.RMSTimeout,
		EndCheckInterval:   s.EndCheckInterval,
		WillEndNotice:      s.WillEndNotice,
		MonitorTTL:         s.MonitorTTL,
		MaxDurationMinutes: s.MaxDurationMinutes,
	}
}

func (o *Options) defaults() {
	def := config.Demo().Scheduler
	if o.NodeTimeout == 0 {
		o.NodeTimeout = def.NodeTimeout
	}
	if o.RMSTimeout == 0 {
		o.RMSTimeout = def.RMSTimeout
	}
	if o.EndCheckInterval == 0 {
		o.EndCheckInterval = def.EndCheckInterval
	}
	if o.WillEndNotice == 0 {
		o.WillEndNotice = def.WillEndNotice
	}
	if o.MonitorTTL == 0 {
		o.MonitorTTL = def.MonitorTTL
	}
	if o.MaxDurationMinutes == 0 {
		o.MaxDurationMinutes = def.MaxDurationMinutes
	}
	if o.ReleaseTimeout == 0 {
		o.ReleaseTimeout = 500 * time.Millisecond
	}
	if o.Concurrency == 0 {
		o.Concurrency = 4096
	}
}

// Deps are what a scheduler works with.
type Deps struct {
	Bus    *bus.Bus
	Store  *store.Store
	Config *config.Config
	Log    *slog.Logger
	// Metrics, when set, receives the scheduler's metrics.
	Metrics prometheus.Registerer
}

// Scheduler is CSS for one platform.
type Scheduler struct {
	opts   Options
	bus    *bus.Bus
	store  *store.Store
	cfg    *config.Config
	log    *slog.Logger
	m      *metrics
	plat   config.Platform
	loads  *loads
	ready  atomic.Bool
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	subs     []*bus.Subscription
	controls map[string]*bus.Subscription // e164 -> its mau.cmcmu subscription
	group    *bus.Group
	ctl      *bus.Mux
	willEnd  map[string]int64 // e164 -> end time it was told about
}

// New builds a scheduler; Start runs it.
func New(opts Options, deps Deps) (*Scheduler, error) {
	opts.defaults()
	if deps.Bus == nil || deps.Store == nil || deps.Config == nil {
		return nil, errors.New("scheduler: bus, store and config are required")
	}
	if opts.Platform == "" {
		opts.Platform = deps.Config.Platform
	}
	plat, ok := deps.Config.PlatformByMoid(opts.Platform)
	if !ok {
		return nil, fmt.Errorf("scheduler: platform %q is not in the configuration", opts.Platform)
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{
		opts:     opts,
		bus:      deps.Bus,
		store:    deps.Store,
		cfg:      deps.Config,
		log:      log.With("service", "scheduler", "platform", opts.Platform),
		m:        newMetrics(deps.Metrics),
		plat:     plat,
		loads:    newLoads(),
		controls: make(map[string]*bus.Subscription),
		willEnd:  make(map[string]int64),
	}
	return s, nil
}

// Start publishes the domains, adopts the conferences the store says run
// here, subscribes and starts the timers. It returns once the scheduler
// accepts requests.
func (s *Scheduler) Start(ctx context.Context) error {
	if err := s.publishDomains(ctx); err != nil {
		return err
	}
	s.ctl = bus.NewMux(s.logUnknown)
	s.controlRoutes(s.ctl)
	s.group = s.bus.NewGroup(bus.HandlerFunc(s.serveControl), 8, 1<<14)
	if err := s.adopt(ctx); err != nil {
		return err
	}
	cm := bus.NewMux(s.logUnknown)
	cm.HandleFunc(protocol.CMCreateConfReq, s.handleCreate)
	cm.HandleFunc(protocol.CMCreateTemplateReq, s.handleTemplate)
	cm.HandleFunc(protocol.CMModifyTemplateReq, s.handleTemplate)
	cm.HandleFunc(protocol.CMDeleteTemplateReq, s.handleTemplate)
	s.controlRoutes(cm)
	nodes := bus.NewMux(s.logUnknown)
	s.nodeRoutes(nodes)
	for _, sub := range []struct {
		subject string
		h       bus.Handler
		opts    []bus.SubOption
	}{
		{protocol.SubjectCMMAU(s.opts.Platform), cm, []bus.SubOption{bus.Queue("scheduler"), bus.Concurrent(s.opts.Concurrency)}},
		{protocol.SubjectFromNodes(s.opts.Platform), nodes, []bus.SubOption{bus.Concurrent(64)}},
		{protocol.SubjectRegistryResync(s.opts.Platform), bus.HandlerFunc(s.handleResync), nil},
	} {
		sb, err := s.bus.Subscribe(sub.subject, sub.h, sub.opts...)
		if err != nil {
			s.unsubscribeAll()
			return fmt.Errorf("scheduler: %w", err)
		}
		s.subs = append(s.subs, sb)
	}
	if err := s.bus.Flush(ctx); err != nil {
		s.unsubscribeAll()
		return fmt.Errorf("scheduler: %w", err)
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.every(loopCtx, s.opts.EndCheckInterval, s.checkEndTimes)
	s.every(loopCtx, monitorCheckInterval(s.opts.MonitorTTL), s.expireMonitors)
	s.ready.Store(true)
	s.log.Info("scheduler ready", "conferences", s.loads.total())
	return nil
}

// Ready reports whether the scheduler accepts requests.
func (s *Scheduler) Ready() bool { return s.ready.Load() }

// Shutdown stops the timers and unsubscribes. Conferences keep running on
// their nodes; another scheduler adopts them from the store.
func (s *Scheduler) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	if s.cancel != nil {
		s.cancel()
	}
	s.unsubscribeAll()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.group != nil {
		s.group.Close()
	}
	return nil
}

func (s *Scheduler) unsubscribeAll() {
	s.mu.Lock()
	subs := s.subs
	s.subs = nil
	controls := s.controls
	s.controls = make(map[string]*bus.Subscription)
	s.mu.Unlock()
	for _, sb := range subs {
		_ = sb.Unsubscribe()
	}
	for _, sb := range controls {
		_ = sb.Unsubscribe()
	}
}

// every runs f every d until ctx ends.
func (s *Scheduler) every(ctx context.Context, d time.Duration, f func(context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f(ctx)
			}
		}
	}()
}

func (s *Scheduler) logUnknown(msg string, args ...any) { s.log.Warn(msg, args...) }

// publishDomains writes the user domains this scheduler serves, with their
// configured licences, into the store (000 §3.3, §4.2).
func (s *Scheduler) publishDomains(ctx context.Context) error {
	for _, d := range s.cfg.Domains {
		if d.Platform != s.opts.Platform {
			continue
		}
		info := store.DomainInfo{
			Moid: d.Moid, Level: 0, UpLevel: d.Platform, Name: d.Name, Used: !d.Disabled,
			EnableH265: d.EnableH265, EnableHDMeeting: d.EnableHDMeeting,
		}
		changed, err := s.store.PublishDomain(ctx, info, d.License)
		if err != nil {
			return fmt.Errorf("scheduler: publish domain %s: %w", d.Moid, err)
		}
		if changed {
			s.log.Info("licence loaded from configuration", "domain", d.Moid, "limits", d.License.Canonical())
		}
	}
	return nil
}

// adopt takes over the conferences the store says run on this platform:
// their control subscriptions and their nodes' loads.
func (s *Scheduler) adopt(ctx context.Context) error {
	confs, err := s.store.AllConferences(ctx)
	if err != nil {
		return fmt.Errorf("scheduler: read conferences: %w", err)
	}
	for _, c := range confs {
		if c.RealPlatform != s.opts.Platform {
			continue
		}
		if c.Node != "" && c.State != protocol.StateCreating {
			s.loads.add(c.Node, 1)
		}
		if c.State != protocol.StateCreating {
			if err := s.subscribeControl(c.E164); err != nil {
				return err
			}
		}
	}
	return nil
}
