package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/protocol"
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
	// MaxDurationMinutes caps a conference's length and a delay; default
	// 10080 (a week).
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
	// Routes are handlers other packages mount on the API (routes.go).
	Routes []Route
	// PeerStore, when set, gives another platform's store (a master whose
	// conferences this platform may run), or nil (stores.go).
	PeerStore func(platform string) *store.Store
}

// Server is the REST API of one platform.
type Server struct {
	opts    Options
	bus     *bus.Bus
	store   *store.Store
	cfg     *config.Config
	log     *slog.Logger
	tokens  []token
	metrics *metrics
	handler http.Handler
	events  *ring
	mounted []Route
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
		opts.MaxDurationMinutes = 7 * 24 * 60
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
		events: newRing(eventRingSize), mounted: deps.Routes,
	}
	tokens, err := newTokens(opts.Tokens, opts.Grants, deps.Config)
	if err != nil {
		return nil, err
	}
	s.tokens = tokens
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.metricsHandler = promhttp.HandlerFor(deps.Gatherer, promhttp.HandlerOpts{})
	if s.handler, err = s.mountedRoutes(); err != nil {
		return nil, err
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
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// handlerFunc is a route's handler: it writes a success itself, or returns
// the error to send.
type handlerFunc func(w http.ResponseWriter, r *http.Request) *apiError

// routes builds the mux. Each path also gets a catch-all for the methods
// it does not serve, so that those get a JSON 405 with Allow.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	add := func(pattern string, h http.Handler) {
		method, path, _ := strings.Cut(pattern, " ")
		allowed[path] = append(allowed[path], method)
		mux.Handle(pattern, s.metrics.instrument(pattern, h))
	}
	for _, rt := range s.ownRoutes() {
		if rt.scope == ScopeOpen {
			add(rt.pattern, rt.open)
			continue
		}
		add(rt.pattern, s.authorized(rt.scope, rt.h))
	}
	for _, rt := range s.mounted {
		add(rt.Pattern, s.mount(rt))
	}

	for path, methods := range allowed {
		sort.Strings(methods)
		allow := strings.Join(methods, ", ")
		if strings.Contains(allow, http.MethodGet) {
			allow += ", " + http.MethodHead
		}
		mux.Handle(path, s.metrics.instrument(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, errorf(ErrMethodNotAllowed, "%s is not served on %s; use %s", r.Method, r.URL.Path, allow))
		})))
	}
	mux.Handle("/", s.metrics.instrument("unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(protocol.ErrNotFound, "no route %s %s; the API lives under /v1", r.Method, r.URL.Path))
	})))
	return mux
}

// route is one of the API's own routes: a handler and what it acts on.
type route struct {
	pattern string
	scope   Scope
	h       handlerFunc
	open    http.HandlerFunc // ScopeOpen routes: serves without a token
}

// ownRoutes are the API's routes, each with its scope (access.go).
func (s *Server) ownRoutes() []route {
	return []route{
		{pattern: "POST /v1/conferences", scope: ScopeBody, h: s.createConference},
		{pattern: "GET /v1/conferences/{e164}", scope: ScopeConference, h: s.getConference},
		{pattern: "DELETE /v1/conferences/{e164}", scope: ScopeConference, h: s.endConference},
		{pattern: "PATCH /v1/conferences/{e164}", scope: ScopeConference, h: s.updateConference},
		{pattern: "POST /v1/conferences/{e164}/delay", scope: ScopeConference, h: s.delayConference},
		{pattern: "POST /v1/conferences/{e164}/monitors", scope: ScopeConference, h: s.startMonitor},
		{pattern: "GET /v1/conferences/{e164}/monitors", scope: ScopeConference, h: s.listMonitors},
		{pattern: "POST /v1/conferences/{e164}/monitors/{addr}/keepalive", scope: ScopeConference, h: s.keepMonitorAlive},
		{pattern: "DELETE /v1/conferences/{e164}/monitors/{addr}", scope: ScopeConference, h: s.stopMonitor},
		{pattern: "GET /v1/domains/{moid}/conferences", scope: ScopeDomain, h: s.domainConferences},
		{pattern: "GET /v1/domains/{moid}/license", scope: ScopeDomain, h: s.getLicense},
		// Setting a licence is the platform's business, not the tenant's.
		{pattern: "PUT /v1/domains/{moid}/license", scope: ScopePlatform, h: s.setLicense},
		{pattern: "GET /v1/domains/{moid}/templates", scope: ScopeDomain, h: s.domainTemplates},
		{pattern: "POST /v1/templates", scope: ScopeBody, h: s.createTemplate},
		{pattern: "GET /v1/templates/{e164}", scope: ScopeTemplate, h: s.getTemplate},
		{pattern: "PUT /v1/templates/{e164}", scope: ScopeTemplate, h: s.updateTemplate},
		{pattern: "DELETE /v1/templates/{e164}", scope: ScopeTemplate, h: s.deleteTemplate},
		{pattern: "GET /v1/nodes", scope: ScopePlatform, h: s.listNodes},
		{pattern: "GET /v1/rooms", scope: ScopePlatform, h: s.listRoomStates},
		{pattern: "POST /v1/rooms/{moid}/fail", scope: ScopePlatform, h: s.failRoom},
		{pattern: "POST /v1/rooms/{moid}/recover", scope: ScopePlatform, h: s.recoverRoom},
		{pattern: "GET /v1/platforms", scope: ScopePlatform, h: s.listPlatformStates},
		{pattern: "POST /v1/platforms/{moid}/fail", scope: ScopePlatform, h: s.failPlatform},
		{pattern: "POST /v1/platforms/{moid}/recover", scope: ScopePlatform, h: s.recoverPlatform},
		{pattern: "PUT /v1/platforms/{moid}/dr", scope: ScopePlatform, h: s.setPlatformDR},
		{pattern: "GET /v1/platforms/{moid}/conferences", scope: ScopePlatform, h: s.platformConferences},
		{pattern: "GET /v1/registry/{e164}", scope: ScopePlatform, h: s.registryEntry},
		{pattern: "GET /v1/events", scope: ScopePlatform, h: s.listEvents},
		{pattern: "GET /healthz", scope: ScopeOpen, open: s.healthz},
		// Metrics name domains, nodes and rooms: a scraper holds a
		// readonly (or operator) token.
		{pattern: "GET /metrics", scope: ScopePlatform, h: s.serveMetrics},
	}
}

// authorized checks the bearer token and its role against the route's
// scope, then runs h and sends its error.
func (s *Server) authorized(scope Scope, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.authenticate(r)
		if !ok {
			unauthorized(w)
			return
		}
		err := s.authorize(r, p, scope)
		if err == nil {
			err = h(w, withPrincipal(r, p))
		}
		if err != nil {
			if Status(err.code) >= 500 {
				s.log.Warn("api request failed", "method", r.Method, "path", r.URL.Path, "code", err.code, "err", err.msg)
			}
			writeError(w, err)
		}
	})
}

// serveMetrics serves the Prometheus registry.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) *apiError {
	s.metricsHandler.ServeHTTP(w, r)
	return nil
}

// holder is who holds the request's token.
func (s *Server) holder(r *http.Request) (string, bool) {
	p, ok := s.authenticate(r)
	if !ok {
		return "", false
	}
	return p.holder, true
}

// healthz says whether the store and the bus are up. Without a valid
// token it says only that ("ok" or "unavailable"); with one it says which
// part is down and why.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	h := Health{Status: "ok", Store: "ok", Bus: "ok"}
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
	if _, ok := s.authenticate(r); !ok {
		h = Health{Status: h.Status}
	}
	writeJSON(w, status, h)
}

// busCtx bounds a bus call by the request timeout.
func (s *Server) busCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.opts.RequestTimeout)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := replyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		_ = json.NewEncoder(buf).Encode(ErrorBody{Error: ErrorDetail{Code: protocol.ErrInternal, Message: "encoding the reply failed: " + err.Error()}})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	if buf.Cap() <= 64<<10 {
		replyBufs.Put(buf)
	}
}

// replyBufs hold replies being encoded: the response copies what it is
// given, so one buffer serves reply after reply. A large one (a long
// list) is not kept.
var replyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, Status(e.code), ErrorBody{Error: ErrorDetail{Code: e.code, Message: e.msg}})
}
