package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/store"
)

// Options configure the API server.
type Options struct {
	// Listen is the address to serve on; default 127.0.0.1:8080.
	Listen string
	// Tokens maps bearer tokens to the names of their holders; each is an
	// operator token (the one `convene serve` makes or is given).
	Tokens map[string]string
	// Grants are tokens with their roles (api.tokens of the topology:
	// operator, tenant for some user domains, readonly). Tokens and Grants
	// together hold at least one token.
	Grants []config.Token
	// Platform is the moid of the platform whose scheduler, RMS and
	// registry the API calls; default the configuration's.
	Platform string
	// MaxDurationMinutes caps a conference's length in the form checks of
	// a booking; default the scheduler's (scheduler.max_duration_minutes
	// of the configuration), which decides.
	MaxDurationMinutes int
	// RequestTimeout bounds each bus call; default 10 s.
	RequestTimeout time.Duration
}

// Deps are what the server uses.
type Deps struct {
	Bus    *bus.Bus
	Store  *store.Store
	Config *config.Config
	Log    *slog.Logger
	// Metrics, when set, registers the API's metrics.
	Metrics prometheus.Registerer
	// Gatherer serves /metrics; default prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Routes are routes other services mount on the API, served with
	// the same auth, roles, envelope and errors as its own.
	Routes []httpkit.Route
	// PeerStore, when set, gives another platform's store (a master whose
	// conferences this platform may run), or nil (stores.go).
	PeerStore func(platform string) *store.Store
	// Records, when set, is the records database GET /v1/logs reads
	// (logs.go); without it that route answers RECORDS_UNAVAILABLE.
	Records *records.DB
}

// Server is the REST API of one platform.
type Server struct {
	opts    Options
	bus     *bus.Bus
	store   *store.Store
	cfg     *config.Config
	log     *slog.Logger
	metrics *metrics
	handler http.Handler
	events  *ring
	// stream, streamBuffer and streamHeartbeat are the event stream's
	// (stream.go).
	stream          *streamHub
	streamBuffer    int
	streamHeartbeat time.Duration
	records         *records.DB
	// routes are the API's own routes and the mounted ones.
	routes []httpkit.Route
	// metricsHandler serves /metrics.
	metricsHandler http.Handler

	mu        sync.Mutex // guards the fields below
	ln        net.Listener
	srv       *http.Server
	subs      []*bus.Subscription
	peerStore func(platform string) *store.Store
}

// New checks the options and dependencies and builds the server; Start
// serves it.
func New(opts Options, deps Deps) (*Server, error) {
	if deps.Bus == nil || deps.Store == nil || deps.Config == nil {
		return nil, errors.New("api: Bus, Store and Config are required")
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:8080"
	}
	if opts.Platform == "" {
		opts.Platform = deps.Config.Platform
	}
	if !protocol.ValidToken(opts.Platform) {
		return nil, fmt.Errorf("api: platform %q: use 1-64 letters, digits, '-' or '_'", opts.Platform)
	}
	if opts.MaxDurationMinutes <= 0 {
		opts.MaxDurationMinutes = deps.Config.Scheduler.MaxDurationMinutes
	}
	if opts.MaxDurationMinutes <= 0 {
		opts.MaxDurationMinutes = config.Demo().Scheduler.MaxDurationMinutes
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 10 * time.Second
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Gatherer == nil {
		deps.Gatherer = prometheus.DefaultGatherer
	}
	s := &Server{
		opts: opts, bus: deps.Bus, store: deps.Store, cfg: deps.Config, log: deps.Log, peerStore: deps.PeerStore,
		events: newRing(eventRingSize),
		stream: newStreamHub(), streamBuffer: streamBuffer, streamHeartbeat: streamHeartbeat, records: deps.Records,
	}
	tokens, err := httpkit.NewTokens(opts.Tokens, opts.Grants, deps.Config)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.metricsHandler = promhttp.HandlerFor(deps.Gatherer, promhttp.HandlerOpts{})
	s.routes = append(s.ownRoutes(), deps.Routes...)
	s.handler, err = httpkit.NewHandler(httpkit.Options{
		Tokens: tokens, Tenancy: tenancy{s}, Instrument: m.instrument, Log: deps.Log,
		NotFoundHint: "the API lives under /v1",
	}, s.routes)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	return s, nil
}

// Handler serves the API; it is what Start listens with.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens, serves in the background and starts the CM agent.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("api: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", s.opts.Listen, err)
	}
	subs, err := s.startAgent()
	if err != nil {
		_ = ln.Close()
		return err
	}
	streamSubs, err := s.startStream()
	if err != nil {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
		_ = ln.Close()
		return err
	}
	subs = append(subs, streamSubs...)
	s.ln, s.subs = ln, subs
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	go func(srv *http.Server) {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api stopped serving", "addr", ln.Addr().String(), "err", err)
		}
	}(s.srv)
	s.log.Info("api listening", "addr", ln.Addr().String(), "platform", s.opts.Platform)
	return nil
}

// Addr is the address the server listens on; empty before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops the CM agent, then stops serving, letting requests in
// flight finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, subs := s.srv, s.subs
	s.subs = nil
	s.mu.Unlock()
	for _, sub := range subs {
		_ = sub.Unsubscribe()
	}
	// Open event streams end now: Shutdown waits for requests to end.
	s.stream.close()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// ownRoutes are the API's routes, each with its scope (access.go).
func (s *Server) ownRoutes() []httpkit.Route {
	table := []struct {
		pattern string
		scope   httpkit.Scope
		h       httpkit.HandlerFunc
	}{
		{"POST /v1/conferences", httpkit.ScopeBody, s.createConference},
		{"GET /v1/conferences/{e164}", httpkit.ScopeConference, s.getConference},
		{"DELETE /v1/conferences/{e164}", httpkit.ScopeConference, s.endConference},
		{"PATCH /v1/conferences/{e164}", httpkit.ScopeConference, s.updateConference},
		{"POST /v1/conferences/{e164}/delay", httpkit.ScopeConference, s.delayConference},
		{"POST /v1/conferences/{e164}/monitors", httpkit.ScopeConference, s.startMonitor},
		{"GET /v1/conferences/{e164}/monitors", httpkit.ScopeConference, s.listMonitors},
		{"POST /v1/conferences/{e164}/monitors/{addr}/keepalive", httpkit.ScopeConference, s.keepMonitorAlive},
		{"DELETE /v1/conferences/{e164}/monitors/{addr}", httpkit.ScopeConference, s.stopMonitor},
		{"GET /v1/domains/{moid}/conferences", httpkit.ScopeDomain, s.domainConferences},
		{"GET /v1/domains/{moid}/license", httpkit.ScopeDomain, s.getLicense},
		// Setting a licence is the platform's business, not the tenant's.
		{"PUT /v1/domains/{moid}/license", httpkit.ScopePlatform, s.setLicense},
		{"GET /v1/domains/{moid}/templates", httpkit.ScopeDomain, s.domainTemplates},
		{"POST /v1/templates", httpkit.ScopeBody, s.createTemplate},
		{"GET /v1/templates/{e164}", httpkit.ScopeTemplate, s.getTemplate},
		{"PUT /v1/templates/{e164}", httpkit.ScopeTemplate, s.updateTemplate},
		{"DELETE /v1/templates/{e164}", httpkit.ScopeTemplate, s.deleteTemplate},
		{"GET /v1/nodes", httpkit.ScopePlatform, s.listNodes},
		{"GET /v1/rooms", httpkit.ScopePlatform, s.listRoomStates},
		{"POST /v1/rooms/{moid}/fail", httpkit.ScopePlatform, s.failRoom},
		{"POST /v1/rooms/{moid}/recover", httpkit.ScopePlatform, s.recoverRoom},
		{"GET /v1/platforms", httpkit.ScopePlatform, s.listPlatformStates},
		{"POST /v1/platforms/{moid}/fail", httpkit.ScopePlatform, s.failPlatform},
		{"POST /v1/platforms/{moid}/recover", httpkit.ScopePlatform, s.recoverPlatform},
		{"PUT /v1/platforms/{moid}/dr", httpkit.ScopePlatform, s.setPlatformDR},
		{"GET /v1/platforms/{moid}/conferences", httpkit.ScopePlatform, s.platformConferences},
		{"GET /v1/registry/{e164}", httpkit.ScopePlatform, s.registryEntry},
		{"GET /v1/events", httpkit.ScopePlatform, s.getEvents},
		{"GET /v1/logs", httpkit.ScopePlatform, s.listLogs},
		{"GET /healthz", httpkit.ScopeOpen, s.healthz},
		// Metrics name domains, nodes and rooms: a scraper holds a
		// readonly (or operator) token.
		{"GET /metrics", httpkit.ScopePlatform, s.serveMetrics},
	}
	out := make([]httpkit.Route, len(table))
	for i, rt := range table {
		out[i] = httpkit.Route{Pattern: rt.pattern, Scope: rt.scope, Handler: rt.h}
	}
	return append(out, s.bookingRoutes()...)
}

// serveMetrics serves the Prometheus registry.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) *codes.Error {
	s.metricsHandler.ServeHTTP(w, r)
	return nil
}

// healthz says whether the store and the bus are up. Without a valid
// token it says only that ("ok" or "unavailable"); with one it says which
// part is down and why.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) *codes.Error {
	h := apiclient.Health{Status: "ok", Store: "ok", Bus: "ok"}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		h.Status, h.Store = "unavailable", "down: "+err.Error()
	}
	if !s.bus.Connected() {
		h.Status, h.Bus = "unavailable", "disconnected"
	}
	status := http.StatusOK
	if h.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	if _, ok := httpkit.PrincipalOf(r); !ok {
		h = apiclient.Health{Status: h.Status}
	}
	httpkit.WriteJSON(w, status, h)
	return nil
}

// busCtx bounds a bus call by the request timeout.
func (s *Server) busCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.opts.RequestTimeout)
}
