package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/store"
)

// PluginID is the scheduler's plugin.
const PluginID = "convene.scheduler"

func init() {
	host.Register(host.Plugin{
		ID:     PluginID,
		Doc:    "the scheduler (CSS): conferences' creation, control, failover and disaster recovery; one instance active per platform, by lease",
		Server: func() host.Server { return new(PluginServer) },
		Config: func() any { return NewPluginConfig() },
	})
}

// PluginConfig is a scheduler server's section of a host file. Its tuning
// (timeouts, lease, restore) is the topology's scheduler: section, the
// same for every instance of the platform.
type PluginConfig struct {
	// Bus and Store are the infrastructure entries it uses.
	Bus   host.ResourceRef `yaml:"bus"`
	Store host.ResourceRef `yaml:"store"`
	// Records is the records database (convene.records.sql) where public
	// templates and bookings live; empty: none (templates in the store
	// only, bookings refused).
	Records host.ResourceRef `yaml:"records"`
	// ID names the instance in the platform's lease; it must be unique
	// among every instance sharing the store. Default a fresh
	// css-<host>-<pid>-<random> each time the server starts.
	ID string `yaml:"id"`
}

// NewPluginConfig is the configuration with its defaults.
func NewPluginConfig() *PluginConfig { return &PluginConfig{Bus: "bus", Store: "store"} }

// busConnector is what a scheduler needs of the bus resource: its own
// connection, and connections to its masters' buses.
type busConnector interface {
	Connect(role bus.Role, name string) (*bus.Bus, error)
	ConnectPeer(moid, url, name string) (*bus.Bus, error)
}

// PluginServer runs one scheduler instance in a host.
type PluginServer struct {
	sc       *Scheduler
	bus      busConnector
	platform string

	mu       sync.Mutex
	peers    map[string]Peer // by platform, the latest
	peerList []Peer          // earlier connections, closed with the instance
	closed   bool
}

// Provision connects the instance to the bus and the store, and makes it.
func (s *PluginServer) Provision(ctx host.Context, cfg any) error {
	c := cfg.(*PluginConfig)
	topo, err := config.FromTopology(ctx.Topology().File, ctx.Topology().Node)
	if err != nil {
		return err
	}
	if s.bus, err = host.ResourceOf[busConnector](ctx, c.Bus); err != nil {
		return err
	}
	st, err := host.ResourceOf[*store.Store](ctx, c.Store)
	if err != nil {
		return err
	}
	var recs Records
	if c.Records != "" {
		db, err := host.ResourceOf[*records.DB](ctx, c.Records)
		if err != nil {
			return err
		}
		recs = db
	}
	opts := OptionsFrom(topo)
	opts.ID = c.ID
	if opts.ID == "" {
		opts.ID = InstanceID()
	}
	if !protocol.ValidToken(opts.ID) {
		return fmt.Errorf("id %q: use 1-64 letters, digits, '-' or '_'", opts.ID)
	}
	b, err := s.bus.Connect(bus.RoleScheduler, opts.ID)
	if err != nil {
		return err
	}
	ctx.OnCleanup(b.Close)
	ctx.OnCleanup(s.closePeers)
	s.platform = topo.Platform
	s.sc, err = New(opts, Deps{Bus: b, Store: st, Config: topo, Log: ctx.Logger(),
		Metrics: firstRegisters{ctx.Metrics()}, Dial: s.dial, Records: recs})
	return err
}

// Start joins the election.
func (s *PluginServer) Start(ctx context.Context) error { return s.sc.Start(ctx) }

// Stop stands down and frees the lease, so that a standby takes over.
func (s *PluginServer) Stop(ctx context.Context) error { return s.sc.Shutdown(ctx) }

// Scheduler is the running instance.
func (s *PluginServer) Scheduler() *Scheduler { return s.sc }

// PeerStore is the store of another platform the instance connected to,
// or nil.
func (s *PluginServer) PeerStore(platform string) *store.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.peers[platform]; ok {
		return p.Store
	}
	return nil
}

// dial connects to a master platform's bus and store, for disaster
// recovery; the connections close with the instance.
func (s *PluginServer) dial(ctx context.Context, info protocol.PlatformInfo) (Peer, error) {
	if info.Bus == "" || info.Store == "" {
		return Peer{}, fmt.Errorf("platform %s: no bus or store address", info.Platform)
	}
	b, err := s.bus.ConnectPeer(info.Platform, info.Bus, "css-"+s.platform+"-to-"+info.Platform)
	if err != nil {
		return Peer{}, err
	}
	st, err := store.Open(ctx, store.Options{URL: info.Store}, nil)
	if err != nil {
		b.Close()
		return Peer{}, err
	}
	p := Peer{Bus: b, Store: st}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = st.Close()
		b.Close()
		return Peer{}, errors.New("scheduler: stopped")
	}
	if old, ok := s.peers[info.Platform]; ok {
		// A second dial of one platform: the first connections stay in
		// use by whoever holds them, and close with the instance.
		s.peerList = append(s.peerList, old)
	}
	if s.peers == nil {
		s.peers = map[string]Peer{}
	}
	s.peers[info.Platform] = p
	return p, nil
}

func (s *PluginServer) closePeers() {
	s.mu.Lock()
	peers := s.peerList
	for _, p := range s.peers {
		peers = append(peers, p)
	}
	s.peers, s.peerList, s.closed = nil, nil, true
	s.mu.Unlock()
	for _, p := range peers {
		_ = p.Store.Close()
		p.Bus.Close()
	}
}

// firstRegisters registers a scheduler's metrics unless another instance
// of the host registered the same names already: instances share them,
// and the first one's are exported.
type firstRegisters struct{ prometheus.Registerer }

func (r firstRegisters) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if !errors.As(err, &dup) {
				panic(err)
			}
		}
	}
}
