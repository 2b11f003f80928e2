package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
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
	// ID names this instance in the platform's lease; it must be unique
	// among every process sharing the store: default InstanceID().
	ID string
	// LeaseTTL is how long the lease outlives its holder; a standby takes
	// over at most LeaseTTL + LeaseRenew after the active one dies.
	LeaseTTL   time.Duration
	LeaseRenew time.Duration
	// RestoreInterval is the period of the restore pass; failed restores
	// back off from RestoreBackoff up to 30 s.
	RestoreInterval time.Duration
	RestoreBackoff  time.Duration
	// RestoreConcurrency bounds the restores under way at once.
	RestoreConcurrency int
	// StartGrace is how long a scheduler that just became active waits for
	// the live nodes' conference lists before restoring what none reports.
	StartGrace time.Duration
	// SweepInterval is the period of the check for creates and restores
	// abandoned halfway (a scheduler died between two steps).
	SweepInterval time.Duration
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
		LeaseTTL:           s.LeaseTTL,
		LeaseRenew:         s.LeaseRenew,
		RestoreInterval:    s.RestoreInterval,
		RestoreBackoff:     s.RestoreBackoff,
		StartGrace:         s.StartGrace,
		SweepInterval:      s.SweepInterval,
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
	if o.ID == "" {
		o.ID = InstanceID()
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 1500 * time.Millisecond
	}
	if o.LeaseRenew == 0 {
		o.LeaseRenew = 200 * time.Millisecond
	}
	if o.RestoreInterval == 0 {
		o.RestoreInterval = time.Second
	}
	if o.RestoreBackoff == 0 {
		o.RestoreBackoff = 250 * time.Millisecond
	}
	if o.RestoreConcurrency == 0 {
		o.RestoreConcurrency = 1024
	}
	if o.StartGrace == 0 {
		o.StartGrace = 3 * time.Second
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = 5 * time.Second
	}
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// InstanceID makes a name for a scheduler instance that no other instance
// shares, in this process or another on any host: css-<host>-<pid>-<random>.
// The lease treats the same name as a renewal, so two instances with one
// name would both believe they hold it.
func InstanceID() string {
	host, _ := os.Hostname()
	if i := strings.IndexByte(host, '.'); i > 0 {
		host = host[:i]
	}
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, host)
	if host == "" {
		host = "host"
	}
	return fmt.Sprintf("css-%s-%d-%s", host, os.Getpid(), randomID())
}

// Deps are what a scheduler works with.
type Deps struct {
	Bus    *bus.Bus
	Store  *store.Store
	Config *config.Config
	Log    *slog.Logger
	// Metrics, when set, receives the scheduler's metrics.
	Metrics prometheus.Registerer
	// Dial connects to a master platform's bus and store with the
	// addresses its PMS gives; needed only where the platform has masters.
	Dial Dialer
	// Records, when set, is where public templates and bookings live
	// (templates.go, bookings.go); nil keeps templates in the store only
	// and refuses bookings.
	Records Records
}

// Scheduler is CSS for one platform. Several may run for one platform: the
// one holding the platform's lease in the store is active, the others stand
// by and take over when it dies (HA).
//
// It coordinates three parts of its own: the election of the active
// instance (election.go), the masters' buses and stores and the service
// list (peers.go), and the CM control of the conferences it runs
// (controlset.go). Its locks are in the package doc.
type Scheduler struct {
	opts  Options
	bus   *bus.Bus
	store *store.Store
	cfg   *config.Config
	log   *slog.Logger
	m     *metrics
	loads *loads
	ready atomic.Bool
	// dead is set by Kill: a crashed scheduler writes nothing more.
	dead atomic.Bool
	// act counts the checks it ran (Activity).
	act activity
	// released remembers the copies nodes were told to let go.
	released letGoes
	// oldCopies gathers the releases of restored conferences' old copies.
	oldCopies *oldCopies
	// offers shares RMS requests among creates asking at once (create.go).
	offers offerFlights
	// inflight are the creates and restores under way here.
	inflight underWay

	// records is where templates and bookings live, or nil.
	records Records

	lease leaseKeeper
	dr    *peers
	ctl   *controls

	// termMu serializes activate and deactivate; cur is the term under
	// way, written under termMu, read by anyone.
	termMu sync.Mutex
	cur    atomic.Pointer[term]

	mu       sync.Mutex
	abnormal map[string]protocol.RoomInfo // failed rooms
	rooms    map[string]string            // node -> room, as RMS last said
	lists    map[string]nodeList
	restore  *restorer
	nodeMu   map[string]*sync.Mutex
}

// leaseKeeper is what the scheduler needs of its election (election.go).
type leaseKeeper interface {
	// join takes the lease if it is free, activating the scheduler, and
	// keeps renewing it, or waiting for it, until stop.
	join(ctx context.Context) error
	// held reports whether the lease is this instance's by its own clock.
	held() bool
	stop()
	release(ctx context.Context) error
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
	if _, ok := deps.Config.PlatformByMoid(opts.Platform); !ok {
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
		records:  recordsOrNil(deps.Records),
		log:      log.With("service", "scheduler", "platform", opts.Platform, "instance", opts.ID),
		m:        newMetrics(deps.Metrics),
		loads:    newLoads(),
		abnormal: make(map[string]protocol.RoomInfo),
		rooms:    make(map[string]string),
		lists:    make(map[string]nodeList),
		nodeMu:   make(map[string]*sync.Mutex),
	}
	s.oldCopies = newOldCopies(releaseQuiet, releaseGather, func(node string, e164s []string) {
		if !s.dead.Load() {
			s.releaseCopies(node, e164s)
		}
	})
	s.lease = newElection(deps.Store, s, opts, s.log)
	s.dr = newPeers(opts.Platform, deps.Bus, deps.Store, deps.Config, opts.RMSTimeout, deps.Dial, s, s.log)
	ctl := bus.NewMux(s.logUnknown)
	s.controlRoutes(ctl)
	backups := len(deps.Config.Local().Backups) > 0
	s.ctl = newControls(opts.Platform, s.dr.masters, backups, deps.Bus, s.dr, ctl, s.log)
	return s, nil
}

// ID names this instance in the lease.
func (s *Scheduler) ID() string { return s.opts.ID }

// Start publishes the domains and joins the election for the platform's
// lease: if the lease is free, the scheduler is active when Start returns;
// otherwise it stands by and takes over when the active one dies.
func (s *Scheduler) Start(ctx context.Context) error {
	if err := s.publishDomains(ctx); err != nil {
		return err
	}
	return s.lease.join(ctx)
}

// Ready reports whether this scheduler is the active one and accepts
// requests: it is active and its lease has not run out by its own clock.
func (s *Scheduler) Ready() bool { return s.ready.Load() && s.lease.held() }

// Shutdown stands down and frees the lease, so a standby takes over at once.
// Conferences keep running on their nodes; the next active scheduler adopts
// them from the store.
func (s *Scheduler) Shutdown(ctx context.Context) error {
	s.lease.stop()
	s.deactivate()
	return s.lease.release(ctx)
}

// Kill stops the scheduler as a crash would: no more writes, no goodbye,
// the lease left to expire.
func (s *Scheduler) Kill() {
	s.dead.Store(true)
	s.lease.stop()
	s.deactivate()
}

// every runs f every d until the term ends, while the lease is held.
func (s *Scheduler) every(t *term, d time.Duration, f func(context.Context)) {
	ctx := t.ctx
	t.life.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if s.lease.held() {
					f(ctx)
				}
			}
		}
	})
}

func (s *Scheduler) logUnknown(msg string, args ...any) { s.log.Warn(msg, args...) }

// publishDomains writes the user domains of this platform, with their
// configured licences, into its store (000 §3.3, §4.2); masters' domains go
// to their stores when they are connected.
func (s *Scheduler) publishDomains(ctx context.Context) error {
	return s.publishDomainsOf(ctx, s.opts.Platform, s.store)
}

func (s *Scheduler) publishDomainsOf(ctx context.Context, platform string, st *store.Store) error {
	for _, d := range s.cfg.Domains {
		if d.Platform != platform {
			continue
		}
		info := store.DomainInfo{
			Moid: d.Moid, Level: 0, UpLevel: d.Platform, Name: d.Name, Used: !d.Disabled,
			EnableH265: d.EnableH265, EnableHDMeeting: d.EnableHDMeeting,
		}
		changed, err := st.PublishDomain(ctx, info, d.License)
		if err != nil {
			return fmt.Errorf("scheduler: publish domain %s: %w", d.Moid, err)
		}
		if changed {
			s.log.Info("licence loaded from configuration", "domain", d.Moid, "platform", platform, "limits", d.License.Canonical())
		}
	}
	return nil
}
