package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/api"
	"github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// Tokens of each role. The tenant acts for acme; beta is another tenant.
const (
	operatorToken = "operator-token-0123456789"
	tenantToken   = "tenant-token-acme-0123456789"
	readonlyToken = "readonly-token-0123456789"
	accessPlat    = "plat-a"
)

// outcome is what a request must get.
type outcome int

const (
	// allowed: the route's handler ran: neither 401 nor 403, nor the 404
	// that hides another tenant's objects.
	allowed outcome = iota
	// forbidden: 403 FORBIDDEN before the handler ran.
	forbidden
	// hidden: 404 with the not-found code of the scope, exactly as for an
	// object that does not exist.
	hidden
)

func (o outcome) String() string { return [...]string{"allowed", "forbidden", "hidden"}[o] }

// accessCase is one route: a request on the tenant's own object and one on
// another tenant's, and what each role must get.
type accessCase struct {
	own, foreign request
	// missing is the request on an object that does not exist, for hidden
	// outcomes: the tenant must not tell it from a foreign one.
	missing request
	// hiddenCode is the code of the 404 a tenant gets for foreign.
	hiddenCode string
	// Outcomes for each role: the tenant on its own object and on another
	// tenant's; readonly (on both).
	tenantOwn, tenantForeign, readonly outcome
	// open: served without a token.
	open bool
}

type request struct{ method, path, body string }

// accessEnv is an API with every route mounted (the breakout service's
// too), a store holding a conference and a template for each of two
// tenants, and no scheduler, RMS or platform monitor: writes the API
// lets through answer 503 and change nothing.
type accessEnv struct {
	srv  *api.Server
	http *httptest.Server
	// Numbers of acme's (own) and beta's (foreign) conferences and
	// templates.
	ownConf, foreignConf, ownTpl, foreignTpl string
}

func newAccessEnv(t *testing.T) *accessEnv {
	t.Helper()
	ctx := context.Background()
	se, err := store.StartEmbedded("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(se.Close)
	st, err := store.Open(ctx, store.Options{URL: se.URL(), Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ne, err := bus.StartEmbedded(bus.EmbeddedOptions{NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ne.Shutdown)
	connect := func(name string) *bus.Bus {
		b, err := bus.Connect(bus.Options{Embedded: ne, Name: name}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}

	cfg := config.Demo()
	limits := license.Limits{"8_720p": 5}
	cfg.Domains = []config.Domain{
		{Moid: "acme", Name: "Acme", Platform: accessPlat, License: limits},
		{Moid: "beta", Name: "Beta", Platform: accessPlat, License: limits},
	}
	// No scheduler runs here: a request for one waits out a handover (the
	// lease's term and a renewal) before it is told so; keep that short.
	cfg.Scheduler.LeaseTTL, cfg.Scheduler.LeaseRenew = 150*time.Millisecond, 50*time.Millisecond
	cfg.API.Tokens = []config.Token{
		{Name: "portal", Token: tenantToken, Role: config.RoleTenant, Domains: []string{"acme"}},
		{Name: "dashboard", Token: readonlyToken, Role: config.RoleReadonly},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	numbering := store.Numbering{Platform: accessPlat, Segment: "66", Digits: 5}
	e := &accessEnv{}
	for _, d := range cfg.Domains {
		if _, err := st.PublishDomain(ctx, store.DomainInfo{Moid: d.Moid, Name: d.Name, Used: true}, d.License); err != nil {
			t.Fatal(err)
		}
		cl, _ := license.ClassOf(8, "720p")
		e164, err := st.Reserve(ctx, store.Reservation{Conf: protocol.Conference{
			Name: "weekly", Domain: d.Moid, Scale: 8, Resolution: "720p", DurationMinutes: 60,
			Platform: accessPlat, RealPlatform: accessPlat, EndTime: time.Now().Add(time.Hour).UnixMilli(),
		}, Class: cl, Numbering: numbering})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Commit(ctx, store.Placement{E164: e164, Node: "node-1", IP: "10.0.0.1", PID: "7", Room: "room-a1", RealPlatform: accessPlat}); err != nil {
			t.Fatal(err)
		}
		tpl, err := st.PutTemplate(ctx, protocol.Template{
			Name: "town hall", Domain: d.Moid, Scale: 8, Resolution: "720p", DurationMinutes: 60, Public: true,
		}, numbering)
		if err != nil {
			t.Fatal(err)
		}
		if d.Moid == "acme" {
			e.ownConf, e.ownTpl = e164, tpl
		} else {
			e.foreignConf, e.foreignTpl = e164, tpl
		}
	}

	bo, err := breakout.New(breakout.Options{}, breakout.Deps{Bus: connect("breakout"), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := bo.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bo.Shutdown(context.Background()) })
	e.srv, err = api.New(api.Options{
		Tokens: map[string]string{operatorToken: "ops"}, Grants: cfg.API.Tokens, Platform: accessPlat,
		RequestTimeout: 2 * time.Second,
	}, api.Deps{Bus: connect("api"), Store: st, Config: cfg, Routes: bo.Routes()})
	if err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.http.Close)
	return e
}

func (e *accessEnv) do(t *testing.T, q request, token string) (int, codes.Envelope, []byte) {
	t.Helper()
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	req, err := http.NewRequest(q.method, e.http.URL+q.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var eb codes.Envelope
	_ = json.Unmarshal(data, &eb)
	return resp.StatusCode, eb, data
}

// cases has one entry for every route the API serves, by pattern.
func (e *accessEnv) cases() map[string]accessCase {
	own, foreign, missing := e.ownConf, e.foreignConf, "6699999"
	conf := func(method, suffix, body string) accessCase {
		ro := forbidden
		if method == http.MethodGet {
			ro = allowed
		}
		return accessCase{
			own:        request{method, "/v1/conferences/" + own + suffix, body},
			foreign:    request{method, "/v1/conferences/" + foreign + suffix, body},
			missing:    request{method, "/v1/conferences/" + missing + suffix, body},
			hiddenCode: codes.ConfNotFound,
			tenantOwn:  allowed, tenantForeign: hidden, readonly: ro,
		}
	}
	tpl := func(method, body string) accessCase {
		ro := forbidden
		if method == http.MethodGet {
			ro = allowed
		}
		return accessCase{
			own:        request{method, "/v1/templates/" + e.ownTpl, body},
			foreign:    request{method, "/v1/templates/" + e.foreignTpl, body},
			missing:    request{method, "/v1/templates/" + missing, body},
			hiddenCode: codes.TemplateNotFound,
			tenantOwn:  allowed, tenantForeign: hidden, readonly: ro,
		}
	}
	domain := func(method, suffix, body string, tenant outcome) accessCase {
		c := accessCase{
			own:        request{method, "/v1/domains/acme" + suffix, body},
			foreign:    request{method, "/v1/domains/beta" + suffix, body},
			missing:    request{method, "/v1/domains/nowhere" + suffix, body},
			readonly:   map[bool]outcome{true: allowed, false: forbidden}[method == http.MethodGet],
			hiddenCode: codes.DomainNotFound,
			tenantOwn:  tenant, tenantForeign: tenant,
		}
		if tenant == allowed {
			c.tenantForeign = hidden
		}
		return c
	}
	platform := func(method, path, body string) accessCase {
		ro := forbidden
		if method == http.MethodGet {
			ro = allowed
		}
		q := request{method, path, body}
		return accessCase{own: q, foreign: q, tenantOwn: forbidden, tenantForeign: forbidden, readonly: ro}
	}
	create := `{"name":"standup","domain":"%s","scale":8,"resolution":"720p","duration_minutes":30}`
	body := func(method, path, format string) accessCase {
		return accessCase{
			own:        request{method, path, strings.ReplaceAll(format, "%s", "acme")},
			foreign:    request{method, path, strings.ReplaceAll(format, "%s", "beta")},
			missing:    request{method, path, strings.ReplaceAll(format, "%s", "nowhere")},
			hiddenCode: codes.DomainNotFound,
			tenantOwn:  allowed, tenantForeign: hidden, readonly: forbidden,
		}
	}
	open := func(path string) accessCase {
		q := request{http.MethodGet, path, ""}
		return accessCase{own: q, foreign: q, open: true}
	}
	// A template moved to another tenant's domain is hidden like one of
	// another tenant.
	updTpl := tpl(http.MethodPut, strings.ReplaceAll(create, "%s", "acme"))
	const bo = "/breakout"
	cases := map[string]accessCase{
		"POST /v1/conferences":                                  body(http.MethodPost, "/v1/conferences", create),
		"GET /v1/conferences/{e164}":                            conf(http.MethodGet, "", ""),
		"DELETE /v1/conferences/{e164}":                         conf(http.MethodDelete, "", ""),
		"PATCH /v1/conferences/{e164}":                          conf(http.MethodPatch, "", `{"name":"renamed"}`),
		"POST /v1/conferences/{e164}/delay":                     conf(http.MethodPost, "/delay", `{"minutes":15}`),
		"POST /v1/conferences/{e164}/monitors":                  conf(http.MethodPost, "/monitors", `{"ip":"10.0.0.9","port":5000}`),
		"GET /v1/conferences/{e164}/monitors":                   conf(http.MethodGet, "/monitors", ""),
		"POST /v1/conferences/{e164}/monitors/{addr}/keepalive": conf(http.MethodPost, "/monitors/10.0.0.9:5000/keepalive", ""),
		"DELETE /v1/conferences/{e164}/monitors/{addr}":         conf(http.MethodDelete, "/monitors/10.0.0.9:5000", ""),
		"GET /v1/domains/{moid}/conferences":                    domain(http.MethodGet, "/conferences", "", allowed),
		"GET /v1/domains/{moid}/license":                        domain(http.MethodGet, "/license", "", allowed),
		"PUT /v1/domains/{moid}/license":                        domain(http.MethodPut, "/license", `{"limits":{"8_720p":5}}`, forbidden),
		"GET /v1/domains/{moid}/templates":                      domain(http.MethodGet, "/templates", "", allowed),
		"GET /v1/domains/{moid}/bookings":                       domain(http.MethodGet, "/bookings", "", allowed),
		"GET /v1/domains/{moid}/bookings/{e164}":                domain(http.MethodGet, "/bookings/6600901", "", allowed),
		"PUT /v1/domains/{moid}/bookings/{e164}":                domain(http.MethodPut, "/bookings/6600901", `{"kind":"virtual","name":"room"}`, allowed),
		"DELETE /v1/domains/{moid}/bookings/{e164}":             domain(http.MethodDelete, "/bookings/6600901", "", allowed),
		"POST /v1/templates":                                    body(http.MethodPost, "/v1/templates", create),
		"GET /v1/templates/{e164}":                              tpl(http.MethodGet, ""),
		"PUT /v1/templates/{e164}":                              updTpl,
		"DELETE /v1/templates/{e164}":                           tpl(http.MethodDelete, ""),
		"GET /v1/nodes":                                         platform(http.MethodGet, "/v1/nodes", ""),
		"GET /v1/rooms":                                         platform(http.MethodGet, "/v1/rooms", ""),
		"POST /v1/rooms/{moid}/fail":                            platform(http.MethodPost, "/v1/rooms/room-a1/fail", `{"reason":"test"}`),
		"POST /v1/rooms/{moid}/recover":                         platform(http.MethodPost, "/v1/rooms/room-a1/recover", ""),
		"GET /v1/platforms":                                     platform(http.MethodGet, "/v1/platforms", ""),
		"POST /v1/platforms/{moid}/fail":                        platform(http.MethodPost, "/v1/platforms/plat-a/fail", ""),
		"POST /v1/platforms/{moid}/recover":                     platform(http.MethodPost, "/v1/platforms/plat-a/recover", ""),
		"PUT /v1/platforms/{moid}/dr":                           platform(http.MethodPut, "/v1/platforms/plat-b/dr", `{"mode":"closed"}`),
		"GET /v1/platforms/{moid}/conferences":                  platform(http.MethodGet, "/v1/platforms/plat-a/conferences", ""),
		"GET /v1/registry/{e164}":                               platform(http.MethodGet, "/v1/registry/"+own, ""),
		"GET /v1/events":                                        platform(http.MethodGet, "/v1/events", ""),
		"GET /v1/logs":                                          platform(http.MethodGet, "/v1/logs", ""),
		"GET /healthz":                                          open("/healthz"),
		"GET /metrics":                                          platform(http.MethodGet, "/metrics", ""),

		// The breakout service's routes, mounted on the API.
		"GET /v1/conferences/{e164}/breakout":                      conf(http.MethodGet, bo, ""),
		"GET /v1/conferences/{e164}/breakout/audio":                conf(http.MethodGet, bo+"/audio", ""),
		"POST /v1/conferences/{e164}/breakout/tickets":             conf(http.MethodPost, bo+"/tickets", `{"userID":7,"role":"host"}`),
		"POST /v1/conferences/{e164}/breakout/start":               conf(http.MethodPost, bo+"/start", `{"roomInfos":[{"roomID":1,"name":"a","mixerMode":0}]}`),
		"POST /v1/conferences/{e164}/breakout/stop":                conf(http.MethodPost, bo+"/stop", `{"delayTime":0}`),
		"POST /v1/conferences/{e164}/breakout/moves":               conf(http.MethodPost, bo+"/moves", `{"destItem":{"userId":7,"userCurrentRoomId":1}}`),
		"POST /v1/conferences/{e164}/breakout/record":              conf(http.MethodPost, bo+"/record", `{"roomID":1}`),
		"PUT /v1/conferences/{e164}/breakout/subscriptions/{user}": conf(http.MethodPut, bo+"/subscriptions/7", `{"subscribeInfos":[]}`),
		"POST /v1/conferences/{e164}/breakout/mute":                conf(http.MethodPost, bo+"/mute", `{"mode":1}`),
		"POST /v1/conferences/{e164}/breakout/audio-state":         conf(http.MethodPost, bo+"/audio-state", `{"userID":7,"audioState":1}`),
		"GET /v1/conferences/{e164}/breakout/ws":                   open("/v1/conferences/" + own + bo + "/ws"),
	}
	return cases
}

// TestRoles checks every route the API serves (its own and the mounted
// ones) with every role: a route without a case here fails the test.
func TestRoles(t *testing.T) {
	e := newAccessEnv(t)
	cases := e.cases()
	served := map[string]bool{}
	for _, rt := range e.srv.RouteTable() {
		served[rt.Pattern] = true
		if _, ok := cases[rt.Pattern]; !ok {
			t.Errorf("route %s (scope %s) has no case in TestRoles: add one saying what each role gets", rt.Pattern, rt.Scope)
		}
	}
	for pattern := range cases {
		if !served[pattern] {
			t.Errorf("TestRoles has a case for %s, which the API does not serve", pattern)
		}
	}
	for _, rt := range e.srv.RouteTable() {
		tc, ok := cases[rt.Pattern]
		if !ok {
			continue
		}
		t.Run(rt.Pattern, func(t *testing.T) {
			if tc.open {
				if !rt.Open {
					t.Fatalf("the case says open, the route asks for a token")
				}
				// Open routes answer without asking for a token (the
				// WebSocket asks for its ticket instead).
				if status, _, body := e.do(t, tc.own, ""); status == http.StatusForbidden || strings.Contains(string(body), "Authorization: Bearer") {
					t.Fatalf("without a token: %d %s", status, body)
				}
				return
			}
			if rt.Open {
				t.Fatalf("the route is open; the case expects a token")
			}
			if status, eb, body := e.do(t, tc.own, ""); status != http.StatusUnauthorized || eb.Error.Code != codes.Unauthorized {
				t.Fatalf("without a token: %d %s", status, body)
			}
			if status, eb, body := e.do(t, tc.own, "wrong-token-0123456789"); status != http.StatusUnauthorized || eb.Error.Code != codes.Unauthorized {
				t.Fatalf("with a wrong token: %d %s", status, body)
			}
			for _, step := range []struct {
				who   string
				token string
				q     request
				want  outcome
			}{
				{"operator, acme's", operatorToken, tc.own, allowed},
				{"operator, beta's", operatorToken, tc.foreign, allowed},
				{"readonly, acme's", readonlyToken, tc.own, tc.readonly},
				{"readonly, beta's", readonlyToken, tc.foreign, tc.readonly},
				{"tenant of acme, acme's", tenantToken, tc.own, tc.tenantOwn},
				{"tenant of acme, beta's", tenantToken, tc.foreign, tc.tenantForeign},
			} {
				status, eb, body := e.do(t, step.q, step.token)
				if got := judge(status, eb.Error.Code, tc.hiddenCode); got != step.want {
					t.Errorf("%s (%s %s): %s, want %s: %d %s", step.who, step.q.method, step.q.path, got, step.want, status, body)
				}
			}
			if tc.tenantForeign != hidden {
				return
			}
			// Another tenant's object is answered exactly as one that
			// does not exist.
			_, _, foreign := e.do(t, tc.foreign, tenantToken)
			_, _, missing := e.do(t, tc.missing, tenantToken)
			foreignID, missingID := lastID(tc.foreign), lastID(tc.missing)
			if got := strings.ReplaceAll(string(foreign), foreignID, missingID); got != string(missing) {
				t.Errorf("another tenant's object answers\n%s\nbut a missing one\n%s", foreign, missing)
			}
		})
	}
}

// judge classifies an answer; hiddenCode is the not-found code that hides
// another tenant's object on this route.
func judge(status int, code, hiddenCode string) outcome {
	switch {
	case status == http.StatusForbidden && code == codes.Forbidden:
		return forbidden
	case status == http.StatusNotFound && hiddenCode != "" && code == hiddenCode:
		return hidden
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return -1
	}
	return allowed
}

// lastID is the number or moid the request names: in the path, else in
// the body.
func lastID(q request) string {
	for _, part := range strings.Split(q.path, "/") {
		if part == "acme" || part == "beta" || part == "nowhere" || (len(part) >= 3 && strings.Trim(part, "0123456789") == "") {
			return part
		}
	}
	for _, id := range []string{"acme", "beta", "nowhere"} {
		if strings.Contains(q.body, `"`+id+`"`) {
			return id
		}
	}
	return ""
}

// A tenant's lists show only its domains; a readonly token reads
// everything and changes nothing.
func TestRolesInPractice(t *testing.T) {
	e := newAccessEnv(t)
	status, _, body := e.do(t, request{http.MethodGet, "/v1/domains/acme/conferences", ""}, tenantToken)
	if status != http.StatusOK || !strings.Contains(string(body), e.ownConf) || strings.Contains(string(body), e.foreignConf) {
		t.Fatalf("tenant's list: %d %s", status, body)
	}
	status, eb, body := e.do(t, request{http.MethodPost, "/v1/rooms/room-a1/fail", ""}, tenantToken)
	if status != http.StatusForbidden || eb.Error.Code != codes.Forbidden || !strings.Contains(eb.Error.Message, "use an operator token") {
		t.Fatalf("tenant failing a room: %d %s", status, body)
	}
	status, eb, body = e.do(t, request{http.MethodDelete, "/v1/conferences/" + e.foreignConf, ""}, readonlyToken)
	if status != http.StatusForbidden || eb.Error.Code != codes.Forbidden || !strings.Contains(eb.Error.Message, "read-only") {
		t.Fatalf("readonly ending a conference: %d %s", status, body)
	}
	status, _, body = e.do(t, request{http.MethodHead, "/v1/conferences/" + e.foreignConf, ""}, readonlyToken)
	if status != http.StatusOK {
		t.Fatalf("readonly HEAD: %d %s", status, body)
	}
}

// A mounted route must say what it acts on in a way the API can check.
func TestMountedRouteScopes(t *testing.T) {
	h := http.NotFoundHandler()
	for name, rt := range map[string]httpkit.Route{
		"conference scope without {e164}": {Pattern: "GET /v1/things", Handler: h, Scope: httpkit.ScopeConference},
		"template scope without {e164}":   {Pattern: "GET /v1/things/{moid}", Handler: h, Scope: httpkit.ScopeTemplate},
		"domain scope without {moid}":     {Pattern: "GET /v1/things/{e164}", Handler: h, Scope: httpkit.ScopeDomain},
		"no such scope":                   {Pattern: "GET /v1/things", Handler: h, Scope: httpkit.Scope(42)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := api.New(api.Options{Tokens: map[string]string{operatorToken: "ops"}, Platform: accessPlat},
				api.Deps{Bus: &bus.Bus{}, Store: &store.Store{}, Config: config.Demo(), Routes: []httpkit.Route{rt}})
			if err == nil || !strings.Contains(err.Error(), "scope") {
				t.Fatalf("New accepted %s: %v", rt.Pattern, err)
			}
		})
	}
}
