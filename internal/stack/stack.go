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
	"net"
	"path/filepath"
	"strconv"
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
	// DataDir, when set, keeps PMS's record of rooms an operator failed.
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
	// configuration's tokens are used).
	Token   string
	Metrics *prometheus.Registry

	embBus     *bus.Embedded
	natsURL    string
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

	busOpts := bus.Options{Name: "convene-" + local.Moid}
	if o.NATS == "" {
		eo := bus.EmbeddedOptions{NoListen: o.NATSListen == "" || o.NATSListen == "none"}
		if !eo.NoListen {
			host, port, err := net.SplitHostPort(o.NATSListen)
			if err != nil {
				return st, fmt.Errorf("--nats-listen %q: %w", o.NATSListen, err)
			}
			eo.Host = host
			eo.Port, _ = strconv.Atoi(port)
		}
		if st.embBus, err = bus.StartEmbedded(eo); err != nil {
			return st, err
		}
		st.defer_(func(context.Context) { st.embBus.Shutdown() })
		busOpts.Embedded = st.embBus
		if o.BusOverTCP {
			if st.embBus.URL() == "" {
				return st, errors.New("stack: BusOverTCP needs the embedded bus to listen (NATSListen)")
			}
			busOpts.Embedded, busOpts.URL, st.natsURL = nil, st.embBus.URL(), st.embBus.URL()
		}
	} else {
		busOpts.URL = o.NATS
		st.natsURL = o.NATS
	}
	// RMS must not count its own cut-off against the nodes.
	busOpts.OnReconnect = func() {
		if st.RMS != nil {
			st.RMS.BusReconnected()
		}
	}
	if st.Bus, err = bus.Connect(busOpts, log); err != nil {
		return st, err
	}
	st.defer_(func(context.Context) { st.Bus.Close() })
	// With the embedded server, RMS also hears node connections end.
	var events *bus.Bus
	if st.embBus != nil {
		eo := bus.Options{Embedded: st.embBus, System: true, Name: "rms-events", OnReconnect: busOpts.OnReconnect}
		if o.BusOverTCP {
			eo.Embedded, eo.URL = nil, st.embBus.SystemURL()
		}
		events, err = bus.Connect(eo, log)
		if err != nil {
			return st, err
		}
		st.defer_(func(context.Context) { events.Close() })
	}

	storeURL, workers := o.Redis, 2
	if storeURL == "" {
		workers = 1
		if st.embStore, err = store.StartEmbedded("127.0.0.1:0"); err != nil {
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
	}, st.Bus, log); err != nil {
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
			pb, err := bus.Connect(bus.Options{URL: p.Bus, Name: "pms-" + local.Moid + "-to-" + p.Moid, RetryOnFailedConnect: true}, log)
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
	if st.PMS, err = platform.New(po, st.Bus, log); err != nil {
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

	if st.Registry, err = registry.New(registry.Options{Platform: local.Moid}, st.Bus, log); err != nil {
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

	if st.Breakout, err = breakout.New(breakout.Options{}, breakout.Deps{Bus: st.Bus, Store: st.Store, Log: log}); err != nil {
		return st, err
	}
	if err = st.Breakout.Start(ctx); err != nil {
		return st, err
	}
	st.defer_(func(c context.Context) { _ = st.Breakout.Shutdown(c) })

	tokens := map[string]string{}
	for _, t := range cfg.API.Tokens {
		tokens[t.Token] = t.Name
	}
	st.Token = o.Token
	if st.Token == "" && len(tokens) == 0 {
		st.Token = randomToken()
	}
	if st.Token != "" {
		tokens[st.Token] = "operator"
	}
	listen := o.Listen
	if listen == "" {
		listen = cfg.API.Listen
	}
	if st.API, err = api.New(api.Options{
		Listen: listen, Tokens: tokens, Platform: local.Moid, MaxDurationMinutes: cfg.Scheduler.MaxDurationMinutes,
	}, api.Deps{Bus: st.Bus, Store: st.Store, Config: cfg, Log: log, Metrics: st.Metrics, Gatherer: st.Metrics, PeerStore: st.PeerStore, Routes: st.Breakout.Routes()}); err != nil {
		return st, err
	}
	if err = st.API.Start(ctx); err != nil {
		return st, err
	}
	st.defer_(func(c context.Context) { _ = st.API.Shutdown(c) })
	return st, nil
}

// AddScheduler starts one more scheduler instance: active if none is,
// standing by otherwise.
func (s *Stack) AddScheduler(ctx context.Context) (*scheduler.Scheduler, error) {
	opts := scheduler.OptionsFrom(s.Config)
	opts.ID = fmt.Sprintf("css-%d", len(s.Schedulers)+1)
	sc, err := scheduler.New(opts, scheduler.Deps{Bus: s.Bus, Store: s.Store, Config: s.Config, Log: s.log, Metrics: s.schedMetrics(), Dial: s.dial})
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
	b, err := s.Connect(resources.NodeConnName(id))
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
	b, err := bus.Connect(bus.Options{URL: info.Bus, Name: "css-" + s.Config.Platform + "-to-" + info.Platform, RetryOnFailedConnect: true}, s.log)
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

// Connect opens another connection to the stack's bus.
func (s *Stack) Connect(name string) (*bus.Bus, error) {
	if s.embBus != nil && s.natsURL == "" {
		return bus.Connect(bus.Options{Embedded: s.embBus, Name: name}, s.log)
	}
	return bus.Connect(bus.Options{URL: s.natsURL, Name: name}, s.log)
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
