package httpkit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/httpkit"
)

const (
	operatorToken = "operator-token-0123456789"
	tenantToken   = "tenant-token-acme-0123456789"
	readonlyToken = "readonly-token-0123456789"
)

// owners is a Tenancy over a fixed table: conference and template numbers
// to their domains.
type owners map[string]string

func (o owners) Owner(_ context.Context, scope httpkit.Scope, e164 string) (string, *codes.Error) {
	if d, ok := o[e164]; ok {
		return d, nil
	}
	return "", o.Hidden(scope, e164)
}

func (owners) Hidden(scope httpkit.Scope, key string) *codes.Error {
	switch scope {
	case httpkit.ScopeConference:
		return codes.Errorf(codes.ConfNotFound, "conference %s does not exist", key)
	case httpkit.ScopeTemplate:
		return codes.Errorf(codes.TemplateNotFound, "template %s does not exist", key)
	}
	return codes.Errorf(codes.DomainNotFound, "domain %q is not known", key)
}

func tokens(t *testing.T) *httpkit.Tokens {
	t.Helper()
	cfg := &config.Config{Domains: []config.Domain{{Moid: "acme"}, {Moid: "beta"}}}
	tk, err := httpkit.NewTokens(map[string]string{operatorToken: "ops"}, []config.Token{
		{Name: "portal", Token: tenantToken, Role: config.RoleTenant, Domains: []string{"acme"}},
		{Name: "dashboard", Token: readonlyToken, Role: config.RoleReadonly},
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// who answers who holds the token and what the body named.
func who(w http.ResponseWriter, r *http.Request) *codes.Error {
	holder, ok := httpkit.Holder(r)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"holder": holder, "has": ok})
	return nil
}

type kit struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	counted map[string]int // requests by instrumented route
	log     bytes.Buffer
}

func newKit(t *testing.T) *kit {
	k := &kit{t: t, counted: map[string]int{}}
	body := func(w http.ResponseWriter, r *http.Request) *codes.Error {
		var in struct {
			Domain string `json:"domain"`
		}
		if err := httpkit.Decode(r, &in); err != nil {
			return err
		}
		if err := httpkit.OwnDomain(r, in.Domain); err != nil {
			return err
		}
		return who(w, r)
	}
	fails := func(http.ResponseWriter, *http.Request) *codes.Error {
		return codes.Errorf(codes.StoreError, "the state store failed: boom")
	}
	routes := []httpkit.Route{
		{Pattern: "GET /v1/conferences/{e164}", Scope: httpkit.ScopeConference, Handler: httpkit.HandlerFunc(who)},
		{Pattern: "DELETE /v1/conferences/{e164}", Scope: httpkit.ScopeConference, Handler: httpkit.HandlerFunc(who)},
		{Pattern: "GET /v1/templates/{e164}", Scope: httpkit.ScopeTemplate, Handler: httpkit.HandlerFunc(who)},
		{Pattern: "GET /v1/domains/{moid}/things", Scope: httpkit.ScopeDomain, Handler: httpkit.HandlerFunc(who)},
		{Pattern: "POST /v1/things", Scope: httpkit.ScopeBody, Handler: httpkit.HandlerFunc(body)},
		{Pattern: "GET /v1/nodes", Scope: httpkit.ScopePlatform, Handler: httpkit.HandlerFunc(who)},
		{Pattern: "GET /v1/failing", Scope: httpkit.ScopePlatform, Handler: httpkit.HandlerFunc(fails)},
		{Pattern: "GET /v1/open", Scope: httpkit.ScopeOpen, Handler: httpkit.HandlerFunc(who)},
	}
	h, err := httpkit.NewHandler(httpkit.Options{
		Tokens:  tokens(t),
		Tenancy: owners{"6600001": "acme", "6600002": "beta", "6700001": "acme", "6700002": "beta"},
		Instrument: func(route string, h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				k.mu.Lock()
				k.counted[route]++
				k.mu.Unlock()
				h.ServeHTTP(w, r)
			})
		},
		Log:          slog.New(slog.NewTextHandler(&k.log, nil)),
		NotFoundHint: "the API lives under /v1",
	}, routes)
	if err != nil {
		t.Fatal(err)
	}
	k.srv = httptest.NewServer(h)
	t.Cleanup(k.srv.Close)
	return k
}

type answer struct {
	status int
	header http.Header
	env    codes.Envelope
	body   string
}

func (k *kit) do(method, path, body, token string) answer {
	k.t.Helper()
	req, err := http.NewRequest(method, k.srv.URL+path, strings.NewReader(body))
	if err != nil {
		k.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := k.srv.Client().Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(data)}
	_ = json.Unmarshal(data, &a.env)
	return a
}

func TestRoles(t *testing.T) {
	k := newKit(t)
	for _, tc := range []struct {
		name, method, path, body, token string
		status                          int
		code                            string // "" for a success
	}{
		{"no token", "GET", "/v1/nodes", "", "", 401, codes.Unauthorized},
		{"wrong token", "GET", "/v1/nodes", "", "not-a-token-0123456789", 401, codes.Unauthorized},
		{"operator, platform", "GET", "/v1/nodes", "", operatorToken, 200, ""},
		{"readonly, platform read", "GET", "/v1/nodes", "", readonlyToken, 200, ""},
		{"readonly, HEAD", "HEAD", "/v1/nodes", "", readonlyToken, 200, ""},
		{"readonly, a change", "DELETE", "/v1/conferences/6600001", "", readonlyToken, 403, codes.Forbidden},
		{"tenant, platform", "GET", "/v1/nodes", "", tenantToken, 403, codes.Forbidden},
		{"tenant, own conference", "GET", "/v1/conferences/6600001", "", tenantToken, 200, ""},
		{"tenant, another's conference", "GET", "/v1/conferences/6600002", "", tenantToken, 404, codes.ConfNotFound},
		{"tenant, missing conference", "GET", "/v1/conferences/6609999", "", tenantToken, 404, codes.ConfNotFound},
		{"tenant, malformed number left to the handler", "GET", "/v1/conferences/x", "", tenantToken, 200, ""},
		{"tenant, own template", "GET", "/v1/templates/6700001", "", tenantToken, 200, ""},
		{"tenant, another's template", "GET", "/v1/templates/6700002", "", tenantToken, 404, codes.TemplateNotFound},
		{"tenant, own domain", "GET", "/v1/domains/acme/things", "", tenantToken, 200, ""},
		{"tenant, another's domain", "GET", "/v1/domains/beta/things", "", tenantToken, 404, codes.DomainNotFound},
		{"tenant, body of its domain", "POST", "/v1/things", `{"domain":"acme"}`, tenantToken, 200, ""},
		{"tenant, body of another's", "POST", "/v1/things", `{"domain":"beta"}`, tenantToken, 404, codes.DomainNotFound},
		{"operator, body of any", "POST", "/v1/things", `{"domain":"beta"}`, operatorToken, 200, ""},
		{"open without a token", "GET", "/v1/open", "", "", 200, ""},
		{"open with a wrong token", "GET", "/v1/open", "", "not-a-token-0123456789", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := k.do(tc.method, tc.path, tc.body, tc.token)
			if a.status != tc.status || a.env.Error.Code != tc.code {
				t.Fatalf("%d %s, want %d %q", a.status, a.body, tc.status, tc.code)
			}
			if tc.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	// Another tenant's object answers exactly as a missing one.
	foreign := k.do("GET", "/v1/conferences/6600002", "", tenantToken)
	missing := k.do("GET", "/v1/conferences/6609999", "", tenantToken)
	if strings.ReplaceAll(foreign.body, "6600002", "6609999") != missing.body {
		t.Fatalf("another tenant's conference answers\n%s\nbut a missing one\n%s", foreign.body, missing.body)
	}
}

// A handler learns who holds the token: on every guarded route, and on an
// open route when the token is valid.
func TestHolder(t *testing.T) {
	k := newKit(t)
	for _, tc := range []struct {
		path, token, holder string
	}{
		{"/v1/nodes", operatorToken, "ops"},
		{"/v1/conferences/6600001", tenantToken, "portal"},
		{"/v1/open", readonlyToken, "dashboard"},
		{"/v1/open", "", ""},
	} {
		a := k.do("GET", tc.path, "", tc.token)
		var got struct {
			Holder string `json:"holder"`
			Has    bool   `json:"has"`
		}
		if err := json.Unmarshal([]byte(a.body), &got); err != nil || got.Holder != tc.holder || got.Has != (tc.holder != "") {
			t.Errorf("%s with %q: %s, want holder %q", tc.path, tc.token, a.body, tc.holder)
		}
	}
}

func TestMethodsAndPaths(t *testing.T) {
	k := newKit(t)
	a := k.do("PUT", "/v1/conferences/6600001", "", operatorToken)
	if a.status != 405 || a.env.Error.Code != codes.MethodNotAllowed || a.header.Get("Allow") != "DELETE, GET, HEAD" ||
		!strings.Contains(a.env.Error.Message, "PUT is not served on /v1/conferences/6600001; use DELETE, GET, HEAD") {
		t.Fatalf("405: %d %v %s", a.status, a.header, a.body)
	}
	a = k.do("GET", "/v2/nothing", "", operatorToken)
	if a.status != 404 || a.env.Error.Code != codes.NotFound || a.env.Error.Message != "no route GET /v2/nothing; the API lives under /v1" {
		t.Fatalf("404: %d %s", a.status, a.body)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, route := range []string{"/v1/conferences/{e164}", "unmatched"} {
		if k.counted[route] != 1 {
			t.Errorf("route %q instrumented %d times, want 1 (%v)", route, k.counted[route], k.counted)
		}
	}
}

// An error answers with the codebook's status, in the envelope; a server
// failure is logged.
func TestErrors(t *testing.T) {
	k := newKit(t)
	a := k.do("GET", "/v1/failing", "", operatorToken)
	if a.status != 500 || a.body != `{"error":{"code":"STORE_ERROR","message":"the state store failed: boom"}}`+"\n" {
		t.Fatalf("%d %q", a.status, a.body)
	}
	if a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("Content-Type %q", a.header.Get("Content-Type"))
	}
	if !strings.Contains(k.log.String(), "code=STORE_ERROR") {
		t.Fatalf("the failure was not logged: %q", k.log.String())
	}
	rec := httptest.NewRecorder()
	httpkit.WriteErrorStatus(rec, http.StatusUpgradeRequired, httpkit.BadRequest("connect with a WebSocket client"))
	if rec.Code != 426 || !strings.Contains(rec.Body.String(), `"code":"BAD_REQUEST"`) {
		t.Fatalf("WriteErrorStatus: %d %s", rec.Code, rec.Body)
	}
}

func TestRouteChecks(t *testing.T) {
	h := http.NotFoundHandler()
	for name, tc := range map[string]struct {
		routes  []httpkit.Route
		tenancy httpkit.Tenancy
		words   string
	}{
		"no method":                   {[]httpkit.Route{{Pattern: "/v1/x", Handler: h}}, owners{}, "give a method"},
		"no handler":                  {[]httpkit.Route{{Pattern: "GET /v1/x"}}, owners{}, "give a method"},
		"conference without {e164}":   {[]httpkit.Route{{Pattern: "GET /v1/x", Handler: h, Scope: httpkit.ScopeConference}}, owners{}, "needs {e164}"},
		"template without {e164}":     {[]httpkit.Route{{Pattern: "GET /v1/x/{moid}", Handler: h, Scope: httpkit.ScopeTemplate}}, owners{}, "needs {e164}"},
		"domain without {moid}":       {[]httpkit.Route{{Pattern: "GET /v1/x/{e164}", Handler: h, Scope: httpkit.ScopeDomain}}, owners{}, "needs {moid}"},
		"no such scope":               {[]httpkit.Route{{Pattern: "GET /v1/x", Handler: h, Scope: httpkit.Scope(9)}}, owners{}, "not a scope"},
		"tenant scope without owners": {[]httpkit.Route{{Pattern: "POST /v1/x", Handler: h, Scope: httpkit.ScopeBody}}, nil, "needs Options.Tenancy"},
		"clash": {[]httpkit.Route{
			{Pattern: "GET /v1/x/{e164}", Handler: h, Scope: httpkit.ScopeConference},
			{Pattern: "GET /v1/x/{e164}", Handler: h, Scope: httpkit.ScopeConference},
		}, owners{}, "routes"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := httpkit.NewHandler(httpkit.Options{Tokens: tokens(t), Tenancy: tc.tenancy}, tc.routes)
			if err == nil || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("NewHandler = %v, want an error saying %q", err, tc.words)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	for name, tc := range map[string]struct {
		operators map[string]string
		grants    []config.Token
		words     string
	}{
		"none":          {nil, nil, "no tokens"},
		"empty":         {map[string]string{"": "ops"}, nil, "is empty"},
		"shared":        {map[string]string{"same-token-0123456789": "ops"}, []config.Token{{Name: "portal", Token: "same-token-0123456789", Role: config.RoleReadonly}}, "are the same token"},
		"unknown realm": {nil, []config.Token{{Name: "portal", Token: "tenant-token-0123456789", Role: config.RoleTenant, Domains: []string{"nowhere"}}}, "nowhere"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := httpkit.NewTokens(tc.operators, tc.grants, &config.Config{Domains: []config.Domain{{Moid: "acme"}}})
			if err == nil || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("NewTokens = %v, want an error saying %q", err, tc.words)
			}
		})
	}
}

// A literal path beside a wider one ("GET /v1/cdrs/stats" and "GET
// /v1/cdrs/{id}") builds, and each still answers 405 for the methods it
// does not serve.
func TestLiteralBesideWildcard(t *testing.T) {
	tokens, err := httpkit.NewTokens(map[string]string{operatorToken: "ops"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ok := httpkit.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) *codes.Error {
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h, err := httpkit.NewHandler(httpkit.Options{Tokens: tokens}, []httpkit.Route{
		{Pattern: "GET /v1/cdrs/{id}", Handler: ok},
		{Pattern: "GET /v1/cdrs/stats", Handler: ok},
		{Pattern: "POST /v1/cdrs/generate", Handler: ok},
	})
	if err != nil {
		t.Fatalf("routes: %v", err)
	}
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/cdrs/c1", 204}, {"GET", "/v1/cdrs/stats", 204}, {"POST", "/v1/cdrs/generate", 204},
		{"GET", "/v1/cdrs/generate", 405}, {"POST", "/v1/cdrs/stats", 405}, {"DELETE", "/v1/cdrs/c1", 405},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+operatorToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec.Code, tc.status)
		}
	}
}
