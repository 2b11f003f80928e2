package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
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
	// Tokens maps each accepted bearer token to the name of its holder; at
	// least one.
	Tokens map[string]string
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

	mu        sync.Mutex // guards the fields below
	ln        net.Listener
	srv       *http.Server
	subs      []*bus.Subscription
	peerStore func(platform string) *store.Store
}

type token struct {
	sum    [sha256.Size]byte
	holder string
}

// New checks the options and dependencies and builds the server; Start
// serves it.
func New(opts Options, deps Deps) (*Server, error) {
	if deps.Bus == nil || deps.Store == nil || deps.Config == nil {
		return nil, errors.New("api: Bus, Store and Config are required")
	}
	if len(opts.Tokens) == 0 {
		return nil, errors.New("api: no tokens: configure at least one under api.tokens")
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
	for tok, holder := range opts.Tokens {
		if tok == "" {
			return nil, fmt.Errorf("api: the token of %q is empty", holder)
		}
		s.tokens = append(s.tokens, token{sum: sha256.Sum256([]byte(tok)), holder: holder})
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if s.handler, err = s.mountedRoutes(promhttp.HandlerFor(deps.Gatherer, promhttp.HandlerOpts{})); err != nil {
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
func (s *Server) routes(metricsHandler http.Handler) http.Handler {
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	add := func(pattern string, h http.Handler) {
		method, path, _ := strings.Cut(pattern, " ")
		allowed[path] = append(allowed[path], method)
		mux.Handle(pattern, s.metrics.instrument(pattern, h))
	}
	v1 := func(pattern string, h handlerFunc) { add(pattern, s.authorized(h)) }

	v1("POST /v1/conferences", s.createConference)
	v1("GET /v1/conferences/{e164}", s.getConference)
	v1("DELETE /v1/conferences/{e164}", s.endConference)
	v1("PATCH /v1/conferences/{e164}", s.updateConference)
	v1("POST /v1/conferences/{e164}/delay", s.delayConference)
	v1("POST /v1/conferences/{e164}/monitors", s.startMonitor)
	v1("GET /v1/conferences/{e164}/monitors", s.listMonitors)
	v1("POST /v1/conferences/{e164}/monitors/{addr}/keepalive", s.keepMonitorAlive)
	v1("DELETE /v1/conferences/{e164}/monitors/{addr}", s.stopMonitor)
	v1("GET /v1/domains/{moid}/conferences", s.domainConferences)
	v1("GET /v1/domains/{moid}/license", s.getLicense)
	v1("PUT /v1/domains/{moid}/license", s.setLicense)
	v1("GET /v1/domains/{moid}/templates", s.domainTemplates)
	v1("POST /v1/templates", s.createTemplate)
	v1("GET /v1/templates/{e164}", s.getTemplate)
	v1("PUT /v1/templates/{e164}", s.updateTemplate)
	v1("DELETE /v1/templates/{e164}", s.deleteTemplate)
	v1("GET /v1/nodes", s.listNodes)
	v1("GET /v1/rooms", s.listRoomStates)
	v1("POST /v1/rooms/{moid}/fail", s.failRoom)
	v1("POST /v1/rooms/{moid}/recover", s.recoverRoom)
	v1("GET /v1/platforms", s.listPlatformStates)
	v1("POST /v1/platforms/{moid}/fail", s.failPlatform)
	v1("POST /v1/platforms/{moid}/recover", s.recoverPlatform)
	v1("PUT /v1/platforms/{moid}/dr", s.setPlatformDR)
	v1("GET /v1/platforms/{moid}/conferences", s.platformConferences)
	v1("GET /v1/registry/{e164}", s.registryEntry)
	v1("GET /v1/events", s.listEvents)
	for _, rt := range s.mounted {
		add(rt.Pattern, s.mount(rt))
	}
	add("GET /healthz", http.HandlerFunc(s.healthz))
	add("GET /metrics", metricsHandler)

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

// authorized checks the bearer token, then runs h and sends its error.
func (s *Server) authorized(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.holder(r); !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="convene"`)
			writeError(w, errorf(protocol.ErrUnauthorized, "send a valid token as \"Authorization: Bearer <token>\" (api.tokens in the configuration; `convene serve` writes one to .convene/token)"))
			return
		}
		if err := h(w, r); err != nil {
			if Status(err.code) >= 500 {
				s.log.Warn("api request failed", "method", r.Method, "path", r.URL.Path, "code", err.code, "err", err.msg)
			}
			writeError(w, err)
		}
	})
}

// holder finds who holds the request's token, comparing in constant time
// against every token.
func (s *Server) holder(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(tok))
	holder, found := "", 0
	for i := range s.tokens {
		if subtle.ConstantTimeCompare(sum[:], s.tokens[i].sum[:]) == 1 {
			holder, found = s.tokens[i].holder, 1
		}
	}
	return holder, found == 1
}

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
	writeJSON(w, status, h)
}

// busCtx bounds a bus call by the request timeout.
func (s *Server) busCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.opts.RequestTimeout)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data, _ = json.Marshal(ErrorBody{Error: ErrorDetail{Code: protocol.ErrInternal, Message: "encoding the reply failed: " + err.Error()}})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, Status(e.code), ErrorBody{Error: ErrorDetail{Code: e.code, Message: e.msg}})
}
