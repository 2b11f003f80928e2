package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/convene/convene/internal/config"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the console.
type Options struct {
	// APIURL is the API the console reads with each session's token
	// (http://host:port); empty: the listener that serves the console,
	// as each request reached it.
	APIURL string
	// SessionTTL is a session's longest life; IdleTimeout how long it
	// lives unused. Defaults 12 h and 1 h.
	SessionTTL  time.Duration
	IdleTimeout time.Duration
	// MaxSessions bounds the sessions kept; default 10,000.
	MaxSessions int
	// PageSize is the rows of a paginated list; default 50.
	PageSize int
	// RequestTimeout bounds each call to the API; default 10 s.
	RequestTimeout time.Duration
}

func (o *Options) defaults() error {
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = time.Hour
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 10000
	}
	if o.PageSize <= 0 {
		o.PageSize = 50
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.APIURL != "" {
		u, err := url.Parse(o.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("console: api_url %q: give the API's address as http://host:port", o.APIURL)
		}
		o.APIURL = strings.TrimRight(o.APIURL, "/")
	}
	return nil
}

// Deps are what the console uses.
type Deps struct {
	// Tokens are the topology's API tokens: the role of a token that
	// logs in is read here (a token the API accepts that is not listed is
	// the API's own operator token).
	Tokens []config.Token
	// Domains are the topology's user domains (the licences page).
	Domains []config.Domain
	Log     *slog.Logger
}

// Console serves the operator console.
type Console struct {
	opts     Options
	log      *slog.Logger
	tokens   []tokenRole
	domains  []config.Domain
	sessions *sessions
	pages    map[string]*template.Template
	static   http.Handler
	httpc    *http.Client
	confs    *confCache
	stop     chan struct{}
}

// tokenRole is a listed token's hash and its role.
type tokenRole struct {
	sum     [sha256.Size]byte
	holder  string
	role    string
	domains []string
}

// New builds the console.
func New(opts Options, deps Deps) (*Console, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	c := &Console{opts: opts, log: deps.Log, domains: deps.Domains, sessions: newSessions(opts.SessionTTL, opts.IdleTimeout, opts.MaxSessions),
		stop: make(chan struct{}), confs: newConfCache(opts.RequestTimeout), httpc: &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}}}
	for _, t := range deps.Tokens {
		role := t.Role
		if role == "" {
			role = config.RoleOperator
		}
		c.tokens = append(c.tokens, tokenRole{sum: sha256.Sum256([]byte(t.Token)), holder: t.Name, role: role, domains: t.Domains})
	}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	return c, nil
}

// Close ends every session and the event streams being relayed.
func (c *Console) Close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.sessions.closeAll()
	c.httpc.CloseIdleConnections()
}

// Route is one of the console's routes.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Routes are the console's routes: each does its own session check, so
// the server serving them lets them through without a bearer token.
func (c *Console) Routes() []Route {
	page := func(f func(http.ResponseWriter, *http.Request, *session)) http.Handler { return c.withSession(f) }
	act := func(f func(http.ResponseWriter, *http.Request, *session)) http.Handler { return c.withAction(f) }
	return []Route{
		{"GET /login", http.HandlerFunc(c.loginPage)},
		{"POST /v1/session", http.HandlerFunc(c.login)},
		{"DELETE /v1/session", http.HandlerFunc(c.logout)},
		{"POST /logout", http.HandlerFunc(c.logout)},
		{"GET /static/{file...}", http.HandlerFunc(c.serveStatic)},
		{"GET /console/events", page(c.events)},
		{"GET /{$}", page(c.overview)},
		{"GET /platforms", page(c.platforms)},
		{"GET /rooms/{moid}/{action}", page(c.confirmRoom)},
		{"POST /rooms/{moid}/{action}", act(c.roomAction)},
		{"GET /platforms/{moid}/{action}", page(c.confirmPlatform)},
		{"POST /platforms/{moid}/{action}", act(c.platformAction)},
		{"GET /nodes", page(c.nodes)},
		{"GET /conferences", page(c.conferences)},
		{"GET /conferences/{e164}", page(c.conference)},
		{"POST /conferences/{e164}/{action}", act(c.conferenceAction)},
		{"GET /licences", page(c.licences)},
		{"GET /calls", page(c.calls)},
		{"GET /calls.csv", page(c.exportCalls)},
		{"GET /calls/{id}", page(c.callLog)},
		{"GET /alarms", page(c.alarms)},
		{"POST /alarms/{id}/ack", act(c.ackAlarm)},
		{"GET /hosts", page(c.hosts)},
		{"POST /hosts/{host}/plugins/{plugin}/{action}", act(c.pluginAction)},
	}
}

// Handler serves the console's routes alone (tests, or a server of its
// own).
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range c.Routes() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	return mux
}

func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	c.static.ServeHTTP(w, r)
}

// securityHeaders are sent with every page: no framing, no sniffing, and
// scripts and styles only from the console itself.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "+
		"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// withSession runs f for a request with a live session; without one, a
// page redirects to /login and a fragment or stream answers 401.
func (c *Console) withSession(f func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.sessions.fromRequest(r)
		if s == nil {
			if r.Header.Get("HX-Request") != "" || strings.HasPrefix(r.URL.Path, "/console/") {
				w.Header().Set("HX-Redirect", "/login")
				http.Error(w, "log in again", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		securityHeaders(w)
		f(w, r, s)
	})
}

// withAction is withSession for a form post: it also checks the CSRF
// token and that the request comes from the console's own pages.
func (c *Console) withAction(f func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return c.withSession(func(w http.ResponseWriter, r *http.Request, s *session) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if !sameOrigin(r) || !s.checkCSRF(r) {
			http.Error(w, "CSRF_FAILED: this form is stale or came from another site; reload the page and submit it again",
				http.StatusForbidden)
			return
		}
		f(w, r, s)
	})
}

// sameOrigin refuses a request whose Origin header names another site
// (browsers send it on every POST; a request without one passes).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// apiBase is where the console reaches the API for r: the configured
// address, or the listener r came in on.
func (c *Console) apiBase(r *http.Request) (string, error) {
	if c.opts.APIURL != "" {
		return c.opts.APIURL, nil
	}
	addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || addr == nil {
		return "", errors.New("console: no API address: set api_url in the console's section")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + addr.String(), nil
}

// roleOf is the role of a token the API accepted.
func (c *Console) roleOf(token string) (holder, role string, domains []string) {
	sum := sha256.Sum256([]byte(token))
	for _, t := range c.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			return t.holder, t.role, t.domains
		}
	}
	return "operator", config.RoleOperator, nil
}
