package host

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// hammer asks url over and over until stopped, counting answers: every
// one must be a 200 from the first instance.
type hammer struct {
	ok, bad atomic.Int64
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	errs    []string
}

func startHammer(t *testing.T, url string) *hammer {
	hm := &hammer{stop: make(chan struct{})}
	hm.wg.Add(1)
	go func() {
		defer hm.wg.Done()
		for {
			select {
			case <-hm.stop:
				return
			default:
			}
			code, body := get(url)
			var v struct{ Instance int }
			_ = json.Unmarshal([]byte(body), &v)
			if code != http.StatusOK || v.Instance != 1 {
				hm.bad.Add(1)
				hm.mu.Lock()
				hm.errs = append(hm.errs, body)
				hm.mu.Unlock()
				continue
			}
			hm.ok.Add(1)
		}
	}()
	t.Cleanup(hm.halt)
	return hm
}

func (hm *hammer) halt() {
	select {
	case <-hm.stop:
	default:
		close(hm.stop)
	}
	hm.wg.Wait()
}

// served waits until the hammer has had more answers than now.
func (hm *hammer) served(t *testing.T) {
	t.Helper()
	n := hm.ok.Load()
	eventually(t, "the other plugin keeps serving", func() bool { return hm.ok.Load() > n+3 })
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type answer struct {
	Instance   int
	Components []string
}

func getAnswer(t *testing.T, url string) answer {
	t.Helper()
	code, body := get(url)
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", url, code, body)
	}
	var a answer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func wantStopped(t *testing.T, url, plugin string) {
	t.Helper()
	code, body := get(url)
	want := `{"error":{"code":"PLUGIN_STOPPED","message":"plugin ` + plugin + ` is stopped on host repo; start it with convene host start ` + plugin + `"}}` + "\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Fatalf("GET %s = %d %s\nwant 503 %s", url, code, body, want)
	}
}

// Stopping a plugin in a running host unloads its components from every
// server holding them and stops its servers; what they served answers 503
// PLUGIN_STOPPED; another plugin's server serves throughout, untouched.
// Starting it again makes fresh instances that serve again.
func TestStopStartPlugin(t *testing.T) {
	h := startHost(t, `
host: {name: repo}
servers:
  web: {plugin: toy.server, route: "GET /web"}
  hub1:
    plugin: toy.hub
    route: "GET /hub1"
    components: [{component: toy.parts/greeter, config: {route: "GET /greet1"}}]
  hub2:
    plugin: toy.hub
    route: "GET /hub2"
    components: [{component: greeter, config: {route: "GET /greet2"}}, counter]
`)
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	ctx := context.Background()
	web := startHammer(t, srv.URL+"/web")
	web.served(t)
	if a := getAnswer(t, srv.URL+"/hub2"); !slices.Equal(a.Components, []string{"counter", "greeter"}) {
		t.Fatalf("hub2 components = %v", a.Components)
	}

	// Stop the components' plugin: unloaded from both hubs, which run on.
	if err := h.StopPlugin(ctx, "toy.parts"); err != nil {
		t.Fatal(err)
	}
	wantStopped(t, srv.URL+"/greet1", "toy.parts")
	wantStopped(t, srv.URL+"/greet2", "toy.parts")
	for _, hub := range []string{"/hub1", "/hub2"} {
		if a := getAnswer(t, srv.URL+hub); a.Instance != 1 || len(a.Components) != 0 {
			t.Fatalf("%s after stopping toy.parts: %+v", hub, a)
		}
	}
	ev := eventsOf("repo")
	for _, e := range []string{"hub1#1 unload greeter", "hub2#1 unload greeter", "hub2#1 unload counter",
		"hub1/greeter#1 stop", "hub1/greeter#1 cleanup", "hub2/greeter#1 cleanup"} {
		if !slices.Contains(ev, e) {
			t.Errorf("no %q in\n%s", e, strings.Join(ev, "\n"))
		}
	}
	if i, j := slices.Index(ev, "hub1#1 unload greeter"), slices.Index(ev, "hub1/greeter#1 stop"); i > j {
		t.Error("a component was stopped before its server unloaded it")
	}
	st := h.Status(ctx)
	if p := pluginState(st, "toy.parts"); p.State != StateStopped {
		t.Fatalf("toy.parts = %+v", p)
	}
	if c := st.Servers[1].Components[0]; c.State != StateStopped || st.Servers[1].State != StateRunning {
		t.Fatalf("hub1 = %+v", st.Servers[1])
	}
	if err := h.StopPlugin(ctx, "toy.parts"); err != nil {
		t.Fatalf("stopping a stopped plugin: %v", err)
	}
	web.served(t)

	// Stop the hubs' plugin too: each route names what keeps it down.
	if err := h.StopPlugin(ctx, "toy.hub"); err != nil {
		t.Fatal(err)
	}
	wantStopped(t, srv.URL+"/hub1", "toy.hub")
	wantStopped(t, srv.URL+"/greet1", "toy.parts")
	web.served(t)

	// Starting the components' plugin loads nothing while their servers
	// are stopped.
	if err := h.StartPlugin(ctx, "toy.parts"); err != nil {
		t.Fatal(err)
	}
	wantStopped(t, srv.URL+"/greet1", "toy.hub")
	if c := h.Status(ctx).Servers[1].Components[0]; c.State != StateStopped || c.Instance != 1 {
		t.Fatalf("greeter of a stopped server = %+v", c)
	}

	// Starting the hubs makes fresh servers with fresh components.
	if err := h.StartPlugin(ctx, "toy.hub"); err != nil {
		t.Fatal(err)
	}
	if a := getAnswer(t, srv.URL+"/hub1"); a.Instance != 2 || !slices.Equal(a.Components, []string{"greeter"}) {
		t.Fatalf("hub1 after start: %+v", a)
	}
	if a := getAnswer(t, srv.URL+"/greet2"); a.Instance != 2 {
		t.Fatalf("greet2 after start: %+v", a)
	}
	if a := getAnswer(t, srv.URL+"/hub2"); !slices.Equal(a.Components, []string{"counter", "greeter"}) {
		t.Fatalf("hub2 after start: %+v", a)
	}
	web.served(t)
	web.halt()
	if n := web.bad.Load(); n != 0 {
		t.Fatalf("the running plugin failed %d requests: %v", n, web.errs[:min(3, len(web.errs))])
	}
	for _, e := range eventsOf("repo") {
		if strings.HasPrefix(e, "web#") && e != "web#1 provision" && e != "web#1 validate" && e != "web#1 start" {
			t.Fatalf("the running plugin was touched: %q", e)
		}
	}
	st = h.Status(ctx)
	for _, p := range st.Plugins {
		if p.State != StateRunning {
			t.Fatalf("plugin %+v after all started", p)
		}
	}
}

func pluginState(st HostStatus, id string) PluginStatus {
	for _, p := range st.Plugins {
		if p.ID == id {
			return p
		}
	}
	return PluginStatus{}
}

// A plugin whose fresh instances fail to start stays stopped, with the
// error kept; what it started is stopped again; a later start works.
func TestStartPluginFailure(t *testing.T) {
	h := startHost(t, `
host: {name: repofail}
servers:
  web: {plugin: toy.server, route: "GET /web"}
  hub1: {plugin: toy.hub, route: "GET /hub1"}
  hub2: {plugin: toy.hub, route: "GET /hub2"}
`)
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	ctx := context.Background()
	if err := h.StopPlugin(ctx, "toy.hub"); err != nil {
		t.Fatal(err)
	}
	journal.Lock()
	journal.failNext["repofail/hub2"] = "start"
	journal.Unlock()
	err := h.StartPlugin(ctx, "toy.hub")
	if !errors.Is(err, ErrPluginFailed) || !errors.Is(err, errToy) || !strings.Contains(err.Error(), "servers.hub2") {
		t.Fatalf("StartPlugin = %v", err)
	}
	st := h.Status(ctx)
	if p := pluginState(st, "toy.hub"); p.State != StateFailed || !strings.Contains(p.Error, "toy failure") {
		t.Fatalf("toy.hub = %+v", p)
	}
	if st.Servers[1].State != StateStopped || st.Servers[2].State != StateFailed {
		t.Fatalf("hub1 %s, hub2 %s", st.Servers[1].State, st.Servers[2].State)
	}
	code, body := get(srv.URL + "/hub1")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "plugin toy.hub failed on host repofail") {
		t.Fatalf("GET /hub1 = %d %s", code, body)
	}
	if err := h.StartPlugin(ctx, "toy.hub"); err != nil {
		t.Fatal(err)
	}
	if a := getAnswer(t, srv.URL+"/hub1"); a.Instance != 3 {
		t.Fatalf("hub1 = %+v, want its third instance", a)
	}
	if c, _ := get(srv.URL + "/web"); c != http.StatusOK {
		t.Fatalf("web = %d", c)
	}
}

func TestStopPluginRefuses(t *testing.T) {
	h := startHost(t, `
host: {name: refuse}
infrastructure:
  store: {plugin: toy.store}
servers:
  web: {plugin: toy.server}
`)
	ctx := context.Background()
	for _, c := range []struct {
		plugin string
		want   error
		text   string
	}{
		{"toy.store", ErrInfrastructure, "infrastructure.store"},
		{"toy.sever", ErrUnknownPlugin, `did you mean "toy.server"?`},
		{"toy.hub", ErrUnknownPlugin, "runs no toy.hub"},
	} {
		for _, op := range []func(context.Context, string) error{h.StopPlugin, h.StartPlugin} {
			if err := op(ctx, c.plugin); !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Errorf("%s: %v, want %v saying %q", c.plugin, err, c.want, c.text)
			}
		}
	}
	if err := h.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.StopPlugin(ctx, "toy.server"); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("StopPlugin on a stopped host = %v", err)
	}
}

// Routes keep what their plugin said of them, with the gate in front.
func TestRoutes(t *testing.T) {
	h := startHost(t, `
host: {name: routes}
servers:
  a: {plugin: toy.server, route: "GET /a", components: [{component: greeter, config: {route: "GET /g/{e164}"}}]}
`)
	rs := h.Routes()
	if len(rs) != 2 || rs[0].Pattern != "GET /a" || rs[0].Plugin != "toy.server" || rs[1].Scope != "conference" || rs[1].Plugin != "toy.parts" {
		t.Fatalf("routes = %+v", rs)
	}
	rec := httptest.NewRecorder()
	rs[1].Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/g/123", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("gated handler = %d", rec.Code)
	}
	code, body := get(httptest.NewServer(h.Handler()).URL + "/nothing")
	if code != http.StatusNotFound || !strings.Contains(body, `"code":"NOT_FOUND"`) {
		t.Fatalf("unknown route = %d %s", code, body)
	}
}
