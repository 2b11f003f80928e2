// Package stack runs one platform's services in one process: bus, store,
// RMS, scheduler, registry, simulated media nodes and the REST API, wired
// the way `convene serve` runs them. The benchmark, the drill and the
// end-to-end tests start the same stack.
//
// It sits above every service package and below the command line.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/convene/convene/internal/api"
	"github.com/convene/convene/internal/audit"
	"github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/platform"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/registry"
	"github.com/convene/convene/internal/resources"
	"github.com/convene/convene/internal/scheduler"
	"github.com/convene/convene/internal/store"
)

// Options say how to run one platform in this process.
type Options struct {
	Config *config.Config
	// NATS is an external bus; empty embeds one listening on NATSListen
	// ("" or "none": in-process only).
	NATS       string
	NATSListen string
	// NATSCreds is the credential for an external bus: a creds file every
	// service of this process uses, or a directory of <role>.creds files,
	// one per service. The embedded bus makes its own (Stack.BusCreds).
	NATSCreds string
	// NATSTLS are TLS files for an external bus and other platforms' buses.
	NATSTLS bus.TLSFiles
	// PeerCreds are credential files, by platform moid, for other
	// platforms' buses (disaster recovery); default this platform's own
	// credential of the platform role.
	PeerCreds map[string]string
	// Redis is an external store; empty embeds one.
	Redis string
	// Listen is the API address; Token the API token (generated when
	// empty and the configuration has none).
	Listen string
	Token  string
	// SimNodes simulated media nodes, spread over the platform's rooms.
	SimNodes    int
	SimCapacity int
	// Schedulers is how many scheduler instances run (one active, the
	// others standing by); default 1.
	Schedulers int
	// BusOverTCP connects every service to the embedded bus over loopback
	// TCP instead of in-process, so that the bus can be restarted under
	// them (RestartBus). Needs NATSListen.
	BusOverTCP bool
	// DataDir, when set, keeps PMS's record of rooms an operator failed
	// and, with no Redis given, the embedded store's data (in
	// <DataDir>/store).
	DataDir string
	// NodePrefix names simulated nodes <prefix>-<n>; default "sim". Node
	// ids must be unique across platforms that share stores.
	NodePrefix string
	Log        *slog.Logger
}

// Stack is one platform's services running in this process. Its fields are
// for the commands and tests that drive it.
type Stack struct {
	Config *config.Config
	Bus    *bus.Bus
	Store  *store.Store
	RMS    *resources.Service
	PMS    *platform.Service
	// Scheduler is the first scheduler instance; Schedulers all of them.
	Scheduler  *scheduler.Scheduler
	Schedulers []*scheduler.Scheduler
	Registry   *registry.Service
	Nodes      []*medianode.Node
	Breakout   *breakout.Service
	API        *api.Server
	// Token is the API token this stack made or was given ("" when the
	// configuration's tokens are used): an operator token, unless the
	// configuration lists it with another role.
	Token   string
	Metrics *prometheus.Registry

	embBus     *bus.Embedded
	natsURL    string
	busCreds   *bus.Creds        // the set the services' credentials come from
	credsFile  string            // or one file for every service (external bus)
	busTLS     bus.TLSFiles      // to an external bus and to peers
	peerCreds  map[string]string // credential files for other platforms' buses
	nodePrefix string
	peersMu    sync.Mutex
	peers      map[string]scheduler.Peer
	embStore   *store.Embedded
	nodeBuses  []*bus.Bus
	log        *slog.Logger
	stops      []func(context.Context)
}

// BusURL is where other processes reach the bus ("" if only in-process).
func (s *Stack) BusURL() string {
	if s.embBus != nil {
		return s.embBus.URL()
	}
	return ""
}

func Start(ctx context.Context, o Options) (st *Stack, err error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := o.Config
	st = &Stack{Config: cfg, log: log, Metrics: prometheus.NewRegistry(), nodePrefix: o.NodePrefix}
	if st.nodePrefix == "" {
		st.nodePrefix = "sim"
	}
	st.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	defer func() {
		if err != nil {
			st.Stop(context.Background())
		}
	}()
	local := cfg.Local()

	if err = st.startBus(o); err != nil {
		return st, err
	}
	// The stack's own connection (Bus), for the commands and tests that
	// drive it: on the embedded bus it may do everything; on an external
	// bus it is the API's role.
	if st.Bus, err = st.connect(bus.RoleInternal, "convene-"+local.Moid, nil); err != nil {
		return st, err
	}
	// RMS must not count its own cut-off against the nodes.
	rmsReconnected := func() {
		if st.RMS != nil {
			st.RMS.BusReconnected()
		}
	}
	// With the embedded server, RMS also hears node connections end.
	var events *bus.Bus
	if st.embBus != nil {
		events, err = bus.Connect(bus.Options{Embedded: st.embBus, OverTCP: st.natsURL != "", System: true,
			Name: "rms-events", OnReconnect: rmsReconnected}, log)
		if err != nil {
			return st, err
		}
		st.defer_(func(context.Context) { events.Close() })
	}
	rmsBus, err := st.connect(bus.RoleRMS, "rms-"+local.Moid, rmsReconnected)
	if err != nil {
		return st, err
	}

	storeURL, workers := o.Redis, 2
	if storeURL == "" {
		workers = 1
		// With a data directory the embedded store keeps its data in
		// <DataDir>/store across restarts; without one, in memory only.
		eo := store.EmbeddedOptions{Addr: "127.0.0.1:0", Log: log}
		if o.DataDir != "" {
			eo.Dir = filepath.Join(o.DataDir, "store")
		}
		if st.embStore, err = store.StartEmbeddedWith(eo); err != nil {
			return st, err
		}
		st.defer_(func(context.Context) { st.embStore.Close() })
		storeURL = st.embStore.URL()
	}
	if st.Store, err = store.Open(ctx, store.Options{URL: storeURL, BatchWorkers: workers}, log); err != nil {
		return st, err
	}
	st.defer_(func(context.Context) { st.Store.Close() })

	rooms := make([]resources.Room, 0, len(local.Rooms))
	for _, r := range local.Rooms {
		rooms = append(rooms, resources.Room{Moid: r.Moid, Name: r.Name, Type: r.RoomType()})
	}
	if st.RMS, err = resources.New(resources.Options{
		Platform: local.Moid, Rooms: rooms, HeartbeatInterval: cfg.RMS.HeartbeatInterval,
		MissedHeartbeats: cfg.RMS.MissedHeartbeats, ConfListInterval: cfg.RMS.ConfListInterval,
		Events: events, DisconnectGrace: cfg.RMS.DisconnectGrace,
		OverloadLag: cfg.RMS.OverloadLag, OverloadHold: cfg.RMS.OverloadHold,
	}, rmsBus, log); err != nil {
		return st, err
	}
	if err = st.RMS.Start(ctx); err != nil {
		return st, err
	}
	st.defer_(func(c context.Context) { _ = st.RMS.Shutdown(c) })

	pmsRooms := make([]platform.Room, 0, len(local.Rooms))
	for _, r := range local.Rooms {
		pmsRooms = append(pmsRooms, platform.Room{Moid: r.Moid, Name: r.Name, Type: r.RoomType()})
	}
	po := platform.Options{Platform: local.Moid, Rooms: pmsRooms, Self: spec(local), Peers: map[string]*bus.Bus{}}
	for _, p := range cfg.Platforms {
		switch {
		case p.Moid == local.Moid:
			continue
		case contains(p.Backups, local.Moid):
			po.Masters = append(po.Masters, spec(p))
		case contains(local.Backups, p.Moid):
			po.Backups = append(po.Backups, spec(p))
		default:
			continue
		}
		if p.Bus != "" {
			// PMS watches its masters and backups over their buses; a
			// platform down now is reconnected to when it comes back.
			pb, err := bus.Connect(st.peerOptions(p.Moid, p.Bus, "pms-"+local.Moid+"-to-"+p.Moid), log)
			if err != nil {
				return st, err
			}
			st.defer_(func(context.Context) { pb.Close() })
			po.Peers[p.Moid] = pb
		}
	}
	if o.DataDir != "" {
		po.State = platform.NewFileStore(filepath.Join(o.DataDir, "pms-"+local.Moid+".json"))
	}
	pmsBus, err := st.connect(bus.RolePMS, "pms-"+local.Moid, nil)
	if err != nil {
		return st, err
	}
	if st.PMS, err = platform.New(po, pmsBus, log); err != nil {
		return st, err
	}
	if err = st.PMS.Start(ctx); err != nil {
		return st, err
	}
	st.defer_(func(c context.Context) { _ = st.PMS.Shutdown(c) })

	for range max(1, o.Schedulers) {
		if _, err = st.AddScheduler(ctx); err != nil {
			return st, err
		}
	}
	st.Scheduler = st.Schedulers[0]

	registryBus, err := st.connect(bus.RoleRegistry, "registry-"+local.Moid, nil)
	if err != nil {
		return st, err
	}
	if st.Registry, err = registry.New(registry.Options{Platform: local.Moid}, registryBus, log); err != nil {
		return st, err
	}
	if err = st.Registry.Start(ctx); err != nil {
		return st, err
	}
	st.defer_(func(c context.Context) { _ = st.Registry.Shutdown(c) })

	for i := range o.SimNodes {
		if err = st.AddSimNode(ctx, i+1, o.SimCapacity); err != nil {
			return st, err
		}
	}

	breakoutBus, err := st.connect(bus.RoleBreakout, "breakout-"+local.Moid, nil)
	if err != nil {
		return st, err
	}
	if st.Breakout, err = breakout.New(breakout.Options{}, breakout.Deps{Bus: breakoutBus, Store: st.Store, Log: log}); err != nil {
		return st, err
	}
	if err = st.Breakout.Start(ctx); err != nil {
		return st, err
	}
	st.defer_(func(c context.Context) { _ = st.Breakout.Shutdown(c) })

	// API tokens: the configuration's, each with its role, and the one
	// given (--api-token) or, with none configured, made here: an operator
	// token. A given token the configuration lists keeps its role there.
	tokens := map[string]string{}
	st.Token = o.Token
	if st.Token == "" && len(cfg.API.Tokens) == 0 {
		st.Token = randomToken()
	}
	if st.Token != "" && !slices.ContainsFunc(cfg.API.Tokens, func(t config.Token) bool { return t.Token == st.Token }) {
		tokens[st.Token] = "operator"
	}
	listen := o.Listen
	if listen == "" {
		listen = cfg.API.Listen
	}
	apiBus, err := st.connect(bus.RoleAPI, "api-"+local.Moid, nil)
	if err != nil {
		return st, err
	}
	if st.API, err = api.New(api.Options{
		Listen: listen, Tokens: tokens, Grants: cfg.API.Tokens, Platform: local.Moid, MaxDurationMinutes: cfg.Scheduler.MaxDurationMinutes,
	}, api.Deps{Bus: apiBus, Store: st.Store, Config: cfg, Log: log, Metrics: st.Metrics, Gatherer: st.Metrics, PeerStore: st.PeerStore, Routes: st.Breakout.Routes()}); err != nil {
		return st, err
	}
	if err = st.API.Start(ctx); err != nil {
		return st, err
	}
	st.defer_(func(c context.Context) { _ = st.API.Shutdown(c) })
	// The CM agent's subscriptions are in place before anyone is told
	// the stack runs.
	if err = apiBus.Flush(ctx); err != nil {
		return st, fmt.Errorf("stack: API bus connection: %w", err)
	}
	return st, nil
}

// AddScheduler starts one more scheduler instance: active if none is,
// standing by otherwise. Its name in the platform's lease is unique to it
// (host, pid, random): instances of other processes on the same store must
// never share one.
func (s *Stack) AddScheduler(ctx context.Context) (*scheduler.Scheduler, error) {
	opts := scheduler.OptionsFrom(s.Config)
	opts.ID = scheduler.InstanceID()
	b, err := s.connect(bus.RoleScheduler, opts.ID, nil)
	if err != nil {
		return nil, err
	}
	sc, err := scheduler.New(opts, scheduler.Deps{Bus: b, Store: s.Store, Config: s.Config, Log: s.log, Metrics: s.schedMetrics(), Dial: s.dial})
	if err != nil {
		return nil, err
	}
	if err := sc.Start(ctx); err != nil {
		return nil, err
	}
	s.Schedulers = append(s.Schedulers, sc)
	s.defer_(func(c context.Context) { _ = sc.Shutdown(c) })
	return sc, nil
}

// schedMetrics registers only the first scheduler's metrics: instances
// share the names.
func (s *Stack) schedMetrics() prometheus.Registerer {
	if len(s.Schedulers) == 0 {
		return s.Metrics
	}
	return nil
}

// ActiveScheduler is the scheduler instance holding the lease, or nil.
func (s *Stack) ActiveScheduler() *scheduler.Scheduler {
	for _, sc := range s.Schedulers {
		if sc.Ready() {
			return sc
		}
	}
	return nil
}

// KillNode crashes simulated node i (0-based): it stops and its bus
// connection closes, as when its process dies.
func (s *Stack) KillNode(i int) {
	s.Nodes[i].Kill()
	s.nodeBuses[i].Close()
}

// FreezeNode makes simulated node i hang: it keeps its connection but
// stops beating and answering, as a hung process or a cut network does.
func (s *Stack) FreezeNode(i int) {
	s.Nodes[i].SetFault(medianode.Fault{NoHeartbeat: true, Silent: true, Only: []string{
		protocol.MAUMCUCreateConfReq, protocol.MAUMCURestoreConfReq, protocol.MAUMCUReleaseConfCmd,
		protocol.MAUMCUConfDurationNtf, protocol.MAUMCUConfWillEndNtf, protocol.MAUMCUModifyConfNameReq,
		protocol.MAUMCUModifyPasswordReq, protocol.MAUMCUStartMonitorReq, protocol.MAUMCUStopMonitorCmd,
		protocol.MAUMCUGetConfListCmd, protocol.CMMCUModifyConfNameAck, protocol.CMMCUModifyConfNameNak,
	}})
}

// Audit checks the platform's invariants against what the simulated nodes
// really host and what RMS says is live.
func (s *Stack) Audit(ctx context.Context) (audit.Report, error) {
	in := audit.Input{Platform: s.Config.Platform, Live: map[string]bool{}, Hosted: map[string][]string{}}
	for _, n := range s.RMS.Nodes() {
		in.Live[n.Node] = n.State == protocol.NodeUp
	}
	for _, n := range s.Nodes {
		if !n.Running() {
			continue
		}
		for _, c := range n.Conferences() {
			in.Hosted[n.ID()] = append(in.Hosted[n.ID()], c.E164)
		}
	}
	for _, d := range s.Config.Domains {
		if d.Platform == s.Config.Platform {
			in.Domains = append(in.Domains, d.Moid)
		}
	}
	return audit.Check(ctx, s.Store, in)
}

// AddSimNode starts simulated node number n on its own bus connection (so
// that closing it is a lost connection), in the platform's rooms in turn.
func (s *Stack) AddSimNode(ctx context.Context, n, capacity int) error {
	local := s.Config.Local()
	room := local.Rooms[(n-1)%len(local.Rooms)]
	id := fmt.Sprintf("%s-%d", s.nodePrefix, n)
	b, err := s.ConnectAs(bus.RoleMCU, resources.NodeConnName(id))
	if err != nil {
		return err
	}
	node, err := medianode.New(medianode.Options{
		ID: id, IP: fmt.Sprintf("127.0.1.%d", n), Room: room.Moid, Platform: local.Moid,
		Capacity: capacity, HeartbeatInterval: s.Config.RMS.HeartbeatInterval, ConfListInterval: s.Config.RMS.ConfListInterval,
	}, b, s.log)
	if err != nil {
		b.Close()
		return err
	}
	if err := node.Start(ctx); err != nil {
		b.Close()
		return err
	}
	s.Nodes = append(s.Nodes, node)
	s.nodeBuses = append(s.nodeBuses, b)
	s.defer_(func(c context.Context) { _ = node.Shutdown(c); b.Close() })
	return nil
}

// RestartBus shuts the embedded bus down and starts it again on the same
// address; every service reconnects (BusOverTCP only).
func (s *Stack) RestartBus() error {
	if s.embBus == nil || s.natsURL == "" {
		return errors.New("stack: RestartBus needs the embedded bus over TCP")
	}
	e, err := s.embBus.Restart()
	if err != nil {
		return err
	}
	s.embBus = e // the shutdown registered at Start stops whichever runs then
	return nil
}

// KickNode cuts simulated node i's bus connection once; its client
// reconnects at once, as after a network blip. It reports how many
// connections it cut.
func (s *Stack) KickNode(i int) int {
	if s.embBus == nil {
		return 0
	}
	return s.embBus.Kick(resources.NodeConnName(s.Nodes[i].ID()))
}

// dial connects to another platform's bus and store, for the scheduler's
// disaster recovery; the connections close with the stack.
func (s *Stack) dial(ctx context.Context, info protocol.PlatformInfo) (scheduler.Peer, error) {
	if info.Bus == "" || info.Store == "" {
		return scheduler.Peer{}, fmt.Errorf("platform %s: no bus or store address", info.Platform)
	}
	b, err := bus.Connect(s.peerOptions(info.Platform, info.Bus, "css-"+s.Config.Platform+"-to-"+info.Platform), s.log)
	if err != nil {
		return scheduler.Peer{}, err
	}
	st, err := store.Open(ctx, store.Options{URL: info.Store}, s.log)
	if err != nil {
		b.Close()
		return scheduler.Peer{}, err
	}
	s.defer_(func(context.Context) { st.Close(); b.Close() })
	p := scheduler.Peer{Bus: b, Store: st}
	s.peersMu.Lock()
	if s.peers == nil {
		s.peers = map[string]scheduler.Peer{}
	}
	s.peers[info.Platform] = p
	s.peersMu.Unlock()
	return p, nil
}

// PeerStore is the store of another platform the scheduler connected to,
// or nil.
func (s *Stack) PeerStore(platform string) *store.Store {
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	if p, ok := s.peers[platform]; ok {
		return p.Store
	}
	return nil
}

// Crash takes the platform down as a datacenter failure does: schedulers
// and nodes die where they stand, the bus goes away, the rest stops. The
// store stays: it is the copy the backup platforms work on.
func (s *Stack) Crash() {
	for _, sc := range s.Schedulers {
		sc.Kill()
	}
	for i := range s.Nodes {
		s.KillNode(i)
	}
	if s.embBus != nil {
		s.embBus.Shutdown()
	}
	s.Stop(context.Background())
}

// Connect opens another connection to the stack's bus, one that may do
// everything (on an external bus, the API's role).
func (s *Stack) Connect(name string) (*bus.Bus, error) { return s.ConnectAs(bus.RoleInternal, name) }

// ConnectAs opens another connection to the stack's bus with a role's
// credential and permissions.
func (s *Stack) ConnectAs(role bus.Role, name string) (*bus.Bus, error) {
	return bus.Connect(s.busOptions(role, name), s.log)
}

func (s *Stack) defer_(f func(context.Context)) { s.stops = append(s.stops, f) }

// Stop shuts everything down: the schedulers first (a node leaving at
// shutdown is no reason to move its conferences), then the rest, last
// started first.
func (s *Stack) Stop(ctx context.Context) {
	for _, sc := range s.Schedulers {
		_ = sc.Shutdown(ctx)
	}
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i](ctx)
	}
	s.stops = nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func spec(p config.Platform) platform.PlatformSpec {
	return platform.PlatformSpec{Moid: p.Moid, Name: p.Name, NumberSegment: p.NumberSegment, Store: p.Store, Bus: p.Bus}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
