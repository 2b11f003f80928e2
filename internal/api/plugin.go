package api

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/store"
)

// PluginID is the REST API's plugin.
const PluginID = "convene.api"

func init() {
	host.Register(host.Plugin{
		ID:     PluginID,
		Doc:    "the REST API and the conference manager (CM); serves the routes every plugin of the host mounts, and GET /v1/hosts",
		Server: func() host.Server { return new(PluginServer) },
		Config: func() any { return NewPluginConfig() },
	})
}

// PluginConfig is an API server's section of a host file. Its tokens are
// the topology's api.tokens.
type PluginConfig struct {
	// Bus and Store are the infrastructure entries it uses.
	Bus   host.ResourceRef `yaml:"bus"`
	Store host.ResourceRef `yaml:"store"`
	// Records is the records database where logs are kept (GET /v1/logs);
	// empty: none, and that route answers RECORDS_UNAVAILABLE.
	Records host.ResourceRef `yaml:"records"`
	// Listen is the API's address; default the topology's api.listen.
	Listen string `yaml:"listen"`
	// OperatorToken is one more operator token besides the topology's
	// (convene serve's --api-token).
	OperatorToken string `yaml:"operator_token"`
	// HostsBus is the bus on which the API reaches the platform's other
	// hosts for GET /v1/hosts and their plugins' stop and start; empty:
	// it manages only its own host.
	HostsBus host.ResourceRef `yaml:"hosts_bus"`
	// RequestTimeout bounds each call over the bus.
	RequestTimeout time.Duration `yaml:"request_timeout"`
}

// NewPluginConfig is the configuration with its defaults.
func NewPluginConfig() *PluginConfig {
	return &PluginConfig{Bus: "bus", Store: "store", RequestTimeout: 10 * time.Second}
}

// busConnector is what the API needs of the bus resource.
type busConnector interface {
	Connect(role bus.Role, name string) (*bus.Bus, error)
}

// PluginServer runs the API in a host: its own routes, those the host's
// other plugins mounted (gated by their state), and the hosts' management.
type PluginServer struct {
	ctx   host.Context
	opts  Options
	deps  Deps
	hosts *hostsAPI
	t     host.Transport

	peers *peerStores

	mu  sync.Mutex
	srv *Server
}

// Provision connects the API and checks its tokens; the server is made at
// Start, once every plugin mounted its routes.
func (s *PluginServer) Provision(ctx host.Context, cfg any) error {
	c := cfg.(*PluginConfig)
	if c.RequestTimeout <= 0 {
		return fmt.Errorf("request_timeout %v: give a positive duration", c.RequestTimeout)
	}
	topo, err := config.FromTopology(ctx.Topology().File, ctx.Topology().Node)
	if err != nil {
		return err
	}
	conn, err := host.ResourceOf[busConnector](ctx, c.Bus)
	if err != nil {
		return err
	}
	st, err := host.ResourceOf[*store.Store](ctx, c.Store)
	if err != nil {
		return err
	}
	var db *records.DB
	if c.Records != "" {
		if db, err = host.ResourceOf[*records.DB](ctx, c.Records); err != nil {
			return err
		}
	}
	tokens := map[string]string{}
	if c.OperatorToken != "" && !slices.ContainsFunc(topo.API.Tokens, func(t config.Token) bool { return t.Token == c.OperatorToken }) {
		tokens[c.OperatorToken] = "operator"
	}
	if _, err := httpkit.NewTokens(tokens, topo.API.Tokens, topo); err != nil {
		return fmt.Errorf("%w: list tokens under api.tokens of the topology, or give operator_token", err)
	}
	listen := c.Listen
	if listen == "" {
		listen = topo.API.Listen
	}
	s.ctx = ctx
	s.peers = &peerStores{cfg: topo, log: ctx.Logger()}
	ctx.OnCleanup(s.peers.close)
	s.opts = Options{Listen: listen, Tokens: tokens, Grants: topo.API.Tokens, Platform: topo.Platform,
		MaxDurationMinutes: topo.Scheduler.MaxDurationMinutes, RequestTimeout: c.RequestTimeout}
	b, err := conn.Connect(bus.RoleAPI, "api-"+topo.Platform)
	if err != nil {
		return err
	}
	ctx.OnCleanup(b.Close)
	s.deps = Deps{Bus: b, Store: st, Config: topo, Log: ctx.Logger(), Metrics: ctx.Metrics(), Gatherer: ctx.Gatherer(),
		PeerStore: s.peers.get, Records: db}
	s.hosts = &hostsAPI{self: ctx.Manager(), name: ctx.HostName(), plugin: ctx.Plugin()}
	if c.HostsBus != "" {
		tp, err := host.ResourceOf[host.TransportProvider](ctx, c.HostsBus)
		if err != nil {
			return fmt.Errorf("hosts_bus: %w", err)
		}
		if s.t, err = tp.Transport("api-hosts-" + ctx.HostName()); err != nil {
			return fmt.Errorf("hosts_bus: %w", err)
		}
		if cl, ok := s.t.(interface{ Close() }); ok {
			ctx.OnCleanup(cl.Close)
		}
		s.hosts.client = host.NewClient(s.t, ctx.Platform())
	}
	return nil
}

// Start builds the server with every route mounted on the host, serves
// it, and starts the CM agent and the hosts' status collector.
func (s *PluginServer) Start(ctx context.Context) error {
	routes := s.hosts.routes()
	for _, rt := range s.ctx.Routes() {
		hr, err := kitRoute(rt)
		if err != nil {
			return err
		}
		routes = append(routes, hr)
	}
	deps := s.deps
	deps.Routes = routes
	srv, err := New(s.opts, deps)
	if err != nil {
		return err
	}
	if s.t != nil {
		if s.hosts.col, err = host.NewCollector(s.t, s.ctx.Platform()); err != nil {
			return err
		}
	}
	if err := srv.Start(ctx); err != nil {
		s.closeCollector()
		return err
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	// The CM agent's subscriptions are in place before anyone is told
	// the API runs.
	if err := deps.Bus.Flush(ctx); err != nil {
		return fmt.Errorf("api: bus connection: %w", err)
	}
	return nil
}

// Stop stops the CM agent, then serving, letting requests in flight end.
func (s *PluginServer) Stop(ctx context.Context) error {
	s.closeCollector()
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

func (s *PluginServer) closeCollector() {
	if s.hosts.col != nil {
		_ = s.hosts.col.Close()
	}
}

// Server is the running API (nil before Start).
func (s *PluginServer) Server() *Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// kitRoute turns a route a plugin mounted into one the API serves.
func kitRoute(rt host.Route) (httpkit.Route, error) {
	out := httpkit.Route{Pattern: rt.Pattern, Handler: rt.Handler}
	if rt.Open {
		out.Scope = httpkit.ScopeOpen
		return out, nil
	}
	for sc := httpkit.ScopePlatform; sc <= httpkit.ScopeOpen; sc++ {
		if sc.String() == rt.Scope {
			out.Scope = sc
			return out, nil
		}
	}
	if rt.Scope == "" {
		return out, nil // platform: closed to tenants
	}
	return out, fmt.Errorf("route %s of plugin %s: scope %q is none of platform, conference, domain, template, body or open", rt.Pattern, rt.Plugin, rt.Scope)
}

// peerStores are the stores of the platforms whose conferences this one
// may run (its masters), opened on first use from the topology's
// addresses and kept until the API stops.
type peerStores struct {
	cfg *config.Config
	log *slog.Logger

	mu     sync.Mutex
	open   map[string]*store.Store
	failed map[string]time.Time // the last failed attempt, tried again after peerRetry
	closed bool
}

// peerRetry is how long a master's store that could not be reached is not
// tried again: requests meanwhile answer at once.
const peerRetry = 5 * time.Second

// get is a master's store, or nil when the topology gives none or it
// cannot be reached now.
func (p *peerStores) get(platform string) *store.Store {
	pl, ok := p.cfg.PlatformByMoid(platform)
	if !ok || pl.Store == "" || !slices.Contains(pl.Backups, p.cfg.Platform) {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.open[platform]; ok || p.closed {
		return st
	}
	if at, ok := p.failed[platform]; ok && time.Since(at) < peerRetry {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Options{URL: pl.Store}, p.log)
	if err != nil {
		p.log.Warn("api: the store of a master platform is not reachable", "platform", platform, "err", err)
		if p.failed == nil {
			p.failed = map[string]time.Time{}
		}
		p.failed[platform] = time.Now()
		return nil
	}
	delete(p.failed, platform)
	if p.open == nil {
		p.open = map[string]*store.Store{}
	}
	p.open[platform] = st
	return st
}

func (p *peerStores) close() {
	p.mu.Lock()
	open := p.open
	p.open, p.closed = nil, true
	p.mu.Unlock()
	for _, st := range open {
		_ = st.Close()
	}
}
