// Package stack runs one platform's services in one process: one host of
// the host framework (internal/host) whose file, built in memory, names
// every plugin — bus, store, RMS, PMS, scheduler, registry, simulated
// media nodes, breakout and the REST API — the way `convene serve` runs
// them. The benchmark, the drill and the end-to-end tests start the same
// stack.
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
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/convene/convene/internal/api"
	"github.com/convene/convene/internal/audit"
	"github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/bus/busplugin"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
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
	// Records is the records database (sqlite://<file> or postgres://...)
	// of an infrastructure entry named records; empty: none.
	Records string
	// SimSIP makes the simulated nodes answer SIP calls to their
	// conferences (on 127.0.0.1, a UDP port each).
	SimSIP bool
	// Console serves the operator console (convene.console) on the API's
	// listener.
	Console bool
	// Alarms runs the alarm service (convene.alarms), its alarms kept in
	// Records when given.
	Alarms bool
	// Servers are more servers for the host, started after the
	// platform's own (the wings: SIP, ...).
	Servers []Server
	Log     *slog.Logger
}

// Stack is one platform's services running in this process, on one host
// (Host) whose servers are every plugin of the platform. Its fields are
// for the commands and tests that drive it: they are the instances the
// host started (a plugin stopped and started again has fresh ones; ask
// Host.Instance for them).
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
	// Host runs the services.
	Host *host.Host

	prov       *bus.Provider
	nodePrefix string
	peersMu    sync.Mutex
	peers      map[string]scheduler.Peer
	nodeBuses  []*bus.Bus
	schedSrv   []*scheduler.PluginServer
	log        *slog.Logger
	stops      []func(context.Context)
}

// BusURL is where other processes reach the embedded bus ("" if it listens
// for nobody, or the bus is external).
func (s *Stack) BusURL() string {
	if s.prov == nil || s.prov.External() {
		return ""
	}
	return s.prov.URL()
}

// BusCreds is the credential set of the stack's bus: where the embedded
// bus's role files are (Dir), or nil when each service uses one file.
func (s *Stack) BusCreds() *bus.Creds {
	if s.prov == nil {
		return nil
	}
	return s.prov.Creds()
}

// Start runs the platform: it builds the host file of every service from
// o (hostFile), starts the host, and takes the instances it started.
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
	if o.NATS == "" && o.BusOverTCP && (o.NATSListen == "" || o.NATSListen == "none") {
		return st, errors.New("stack: BusOverTCP needs the embedded bus to listen (NATSListen)")
	}
	// API tokens: the configuration's, each with its role, and the one
	// given (--api-token) or, with none configured, made here: an operator
	// token. A given token the configuration lists keeps its role there.
	st.Token = o.Token
	if st.Token == "" && len(cfg.API.Tokens) == 0 {
		st.Token = randomToken()
	}
	f, err := hostFile(o, st.Token, st.nodePrefix)
	if err != nil {
		return st, err
	}
	h, err := host.New(f, host.Options{Log: log, Metrics: st.Metrics})
	if err != nil {
		return st, err
	}
	if err = h.Start(ctx); err != nil {
		return st, err
	}
	st.Host = h
	if err = st.take(); err != nil {
		return st, err
	}
	// The stack's own connection (Bus), for the commands and tests that
	// drive it: on the embedded bus it may do everything; on an external
	// bus it is the API's role.
	if st.Bus, err = st.connect(bus.RoleInternal, "convene-"+cfg.Local().Moid); err != nil {
		return st, err
	}
	return st, nil
}

// take finds the instances the host started.
func (s *Stack) take() error {
	var missing []string
	inst := func(name string) any {
		v, ok := s.Host.Instance(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	}
	if v, ok := inst(BusResource).(*busplugin.Server); ok {
		s.prov = v.Provider()
	}
	if v, ok := inst(StoreResource).(*store.PluginServer); ok {
		s.Store, _ = v.Resource().(*store.Store)
	}
	if v, ok := inst(rmsServer).(*resources.PluginServer); ok {
		s.RMS = v.Service()
	}
	if v, ok := inst(pmsServer).(*platform.PluginServer); ok {
		s.PMS = v.Service()
	}
	for i := 0; ; i++ {
		v, ok := s.Host.Instance(schedulerServer(i))
		if !ok {
			break
		}
		ps := v.(*scheduler.PluginServer)
		s.schedSrv = append(s.schedSrv, ps)
		s.Schedulers = append(s.Schedulers, ps.Scheduler())
	}
	if len(s.Schedulers) == 0 {
		missing = append(missing, schedulerServer(0))
	} else {
		s.Scheduler = s.Schedulers[0]
	}
	if v, ok := inst(registryServer).(*registry.PluginServer); ok {
		s.Registry = v.Service()
	}
	if v, ok := s.Host.Instance(nodesServer); ok {
		sim := v.(*medianode.SimServer)
		s.Nodes = sim.Nodes()
		for i := range s.Nodes {
			s.nodeBuses = append(s.nodeBuses, sim.Conn(i))
		}
	}
	if v, ok := inst(breakoutServer).(*breakout.PluginServer); ok {
		s.Breakout = v.Service()
	}
	if v, ok := inst(apiServer).(*api.PluginServer); ok {
		s.API = v.Server()
	}
	if len(missing) > 0 {
		return fmt.Errorf("stack: the host runs no %s", strings.Join(missing, ", "))
	}
	return nil
}

// AddScheduler starts one more scheduler instance, beside the host's:
// active if none is, standing by otherwise. Its name in the platform's
// lease is unique to it (host, pid, random): instances of other processes
// on the same store must never share one.
func (s *Stack) AddScheduler(ctx context.Context) (*scheduler.Scheduler, error) {
	opts := scheduler.OptionsFrom(s.Config)
	opts.ID = scheduler.InstanceID()
	b, err := s.connect(bus.RoleScheduler, opts.ID)
	if err != nil {
		return nil, err
	}
	// Its metrics share their names with the host's instances': only
	// theirs are registered.
	sc, err := scheduler.New(opts, scheduler.Deps{Bus: b, Store: s.Store, Config: s.Config, Log: s.log, Dial: s.dial})
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
	b, err := s.ConnectAs(bus.RoleMCU, bus.NodeConnName(id))
	if err != nil {
		return err
	}
	node, err := medianode.New(medianode.Options{
		ID: id, IP: medianode.SimIP(n), Room: room.Moid, Platform: local.Moid,
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
	if s.prov == nil {
		return errors.New("stack: RestartBus needs the embedded bus over TCP")
	}
	return s.prov.Restart()
}

// KickNode cuts simulated node i's bus connection once; its client
// reconnects at once, as after a network blip. It reports how many
// connections it cut.
func (s *Stack) KickNode(i int) int {
	if s.prov == nil {
		return 0
	}
	return s.prov.Kick(bus.NodeConnName(s.Nodes[i].ID()))
}

// dial connects to another platform's bus and store, for the disaster
// recovery of the schedulers AddScheduler starts; the connections close
// with the stack.
func (s *Stack) dial(ctx context.Context, info protocol.PlatformInfo) (scheduler.Peer, error) {
	if info.Bus == "" || info.Store == "" {
		return scheduler.Peer{}, fmt.Errorf("platform %s: no bus or store address", info.Platform)
	}
	b, err := s.prov.ConnectPeer(info.Platform, info.Bus, "css-"+s.Config.Platform+"-to-"+info.Platform)
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

// PeerStore is the store of another platform a scheduler of the stack
// connected to, or nil.
func (s *Stack) PeerStore(platform string) *store.Store {
	s.peersMu.Lock()
	p, ok := s.peers[platform]
	s.peersMu.Unlock()
	if ok {
		return p.Store
	}
	for _, ps := range s.schedSrv {
		if st := ps.PeerStore(platform); st != nil {
			return st
		}
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
	if s.prov != nil {
		s.prov.Close()
	}
	s.Stop(context.Background())
}

// Connect opens another connection to the stack's bus, one that may do
// everything (on an external bus, the API's role).
func (s *Stack) Connect(name string) (*bus.Bus, error) { return s.ConnectAs(bus.RoleInternal, name) }

// ConnectAs opens another connection to the stack's bus with a role's
// credential and permissions.
func (s *Stack) ConnectAs(role bus.Role, name string) (*bus.Bus, error) {
	if s.prov == nil {
		return nil, errors.New("stack: the bus is not running")
	}
	return s.prov.Connect(role, name)
}

// connect opens a connection as role that closes with the stack.
func (s *Stack) connect(role bus.Role, name string) (*bus.Bus, error) {
	b, err := s.ConnectAs(role, name)
	if err != nil {
		return nil, err
	}
	s.defer_(func(context.Context) { b.Close() })
	return b, nil
}

func (s *Stack) defer_(f func(context.Context)) { s.stops = append(s.stops, f) }

// Stop shuts everything down: the schedulers first (a node leaving at
// shutdown is no reason to move its conferences), then what the stack
// added to the host, last added first, then the host. Safe to repeat.
func (s *Stack) Stop(ctx context.Context) {
	for _, sc := range s.Schedulers {
		_ = sc.Shutdown(ctx)
	}
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i](ctx)
	}
	s.stops = nil
	if s.Host != nil {
		if err := s.Host.Stop(ctx); err != nil {
			s.log.Warn("stack: stopping the host", "err", err)
		}
	}
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
