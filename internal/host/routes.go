package host

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
)

// Route is an HTTP handler a server or component mounts through its
// Context, for the API (or any HTTP server of the host) to serve. The host
// hands out a gated handler: while the route's plugin (or the plugin of
// the server holding it) is stopped, it answers 503 with the API's error
// envelope and code PLUGIN_STOPPED.
type Route struct {
	// Pattern is a net/http pattern with its method: "GET /v1/things/{id}".
	Pattern string       `json:"pattern"`
	Handler http.Handler `json:"-"`
	// Open and Scope are for the server that serves the route (the API:
	// whether it needs a bearer token, what it acts on: "platform",
	// "conference", "domain", "template"); the host keeps them as given.
	Open  bool   `json:"open,omitempty"`
	Scope string `json:"scope,omitempty"`
	// Plugin is the plugin that mounted it (set by the host).
	Plugin string `json:"plugin"`
}

// routeEntry is one mounted pattern: its owner's slot, and the handler of
// the owner's current instance (nil while it has none).
type routeEntry struct {
	route   Route
	owner   *slot
	handler atomic.Pointer[http.Handler]
	gate    http.Handler
}

// routeTable holds every route mounted on the host. Once the host has
// started (sealed), a fresh instance may mount again only the patterns its
// slot mounted before: whoever serves the routes read them at start.
type routeTable struct {
	mu      sync.Mutex
	entries map[string]*routeEntry
	sealed  bool
	mux     atomic.Pointer[http.ServeMux]
}

func newRouteTable() *routeTable { return &routeTable{entries: map[string]*routeEntry{}} }

// mount records rt for the instance of s whose life is l.
func (t *routeTable) mount(h *Host, s *slot, l *life, rt Route) error {
	if rt.Handler == nil || !strings.Contains(rt.Pattern, " /") {
		return fmt.Errorf("host: route %q: give a method, a path and a handler", rt.Pattern)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[rt.Pattern]
	switch {
	case ok && e.owner != s:
		return fmt.Errorf("%w: %s is mounted by %s (%s) already; each route has one owner", ErrRouteClash, rt.Pattern, e.owner.path, e.owner.plugin)
	case !ok && t.sealed:
		return fmt.Errorf("%w: %s is new since host %s started; restart the host to serve it", ErrRouteClash, rt.Pattern, h.file.Host.Name)
	case !ok:
		rt.Plugin = s.plugin
		e = &routeEntry{route: rt, owner: s}
		e.gate = h.gateFor(e)
		t.entries[rt.Pattern] = e
	}
	hd := rt.Handler
	e.handler.Store(&hd)
	l.routes = append(l.routes, e)
	return nil
}

// list is every mounted route with its gated handler, sorted by pattern.
func (t *routeTable) list() []Route {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Route, 0, len(t.entries))
	for _, e := range t.entries {
		rt := e.route
		rt.Handler = e.gate
		out = append(out, rt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pattern < out[j].Pattern })
	return out
}

// seal closes the table to new patterns and builds the host's mux.
func (t *routeTable) seal() {
	mux := http.NewServeMux()
	for _, rt := range t.list() {
		mux.Handle(rt.Pattern, rt.Handler)
	}
	t.mu.Lock()
	t.sealed = true
	t.mu.Unlock()
	t.mux.Store(mux)
}

// gateFor is the handler the host gives out for e.
func (h *Host) gateFor(e *routeEntry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.RLock()
		blocker, failed := e.owner.blocker()
		running := e.owner.state == StateRunning
		h.mu.RUnlock()
		hp := e.handler.Load()
		switch {
		case blocker != "":
			msg := fmt.Sprintf("plugin %s is stopped on host %s; start it with convene host start %s", blocker, h.file.Host.Name, blocker)
			if failed {
				msg = fmt.Sprintf("plugin %s failed on host %s (convene host status says why); start it with convene host start %s", blocker, h.file.Host.Name, blocker)
			}
			writeError(w, CodePluginStopped, msg)
		case !running:
			writeError(w, CodePluginStopped,
				fmt.Sprintf("plugin %s is %s on host %s; try again in a moment", e.owner.plugin, e.owner.state, h.file.Host.Name))
		case hp == nil || *hp == nil:
			writeError(w, CodeRouteGone,
				fmt.Sprintf("plugin %s no longer serves %s on host %s", e.owner.plugin, e.route.Pattern, h.file.Host.Name))
		default:
			(*hp).ServeHTTP(w, r)
		}
	})
}

// writeError answers with the error envelope (httpkit.WriteError) and
// code's status from the codebook; a 503 says when to try again.
func writeError(w http.ResponseWriter, code, msg string) {
	e := codes.Errorf(code, "%s", msg)
	if e.Status() == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	httpkit.WriteError(w, e)
}
