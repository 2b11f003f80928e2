package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/testkit"
)

// Routes other packages mount are served with the API's conventions:
// bearer auth unless open, the error envelope, JSON 405 with Allow.
func TestMountedRoutes(t *testing.T) {
	h := newHarness(t)
	type echo struct {
		Holder string `json:"holder"`
		Has    bool   `json:"has"`
		Name   string `json:"name,omitempty"`
	}
	who := func(w http.ResponseWriter, r *http.Request) {
		holder, ok := httpkit.Holder(r)
		httpkit.WriteJSON(w, http.StatusOK, echo{Holder: holder, Has: ok})
	}
	srv, err := New(Options{Tokens: map[string]string{testToken: "tester"}, Platform: platform}, Deps{
		Bus: testkit.Connect(t, h.nats, "mounted"), Store: h.store, Config: config.Demo(),
		Routes: []httpkit.Route{
			{Pattern: "GET /v1/things/{id}", Handler: http.HandlerFunc(who)},
			{Pattern: "GET /v1/things/{id}/ws", Handler: http.HandlerFunc(who), Scope: httpkit.ScopeOpen},
			{Pattern: "POST /v1/things", Handler: httpkit.HandlerFunc(func(w http.ResponseWriter, r *http.Request) *codes.Error {
				var in struct {
					Name string `json:"name"`
				}
				if e := httpkit.Decode(r, &in); e != nil {
					return e
				}
				if in.Name == "" {
					return codes.Errorf(codes.ConfNotRunning, "give the thing a name")
				}
				httpkit.WriteJSON(w, http.StatusCreated, echo{Name: in.Name})
				return nil
			})},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	do := func(method, path, body, auth string) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, data
	}
	errCode := func(body []byte) string {
		var eb codes.Envelope
		_ = json.Unmarshal(body, &eb)
		return eb.Error.Code
	}
	cases := []struct {
		name, method, path, body, auth string
		status                         int
		code                           string // error code, or "" for a success
		holder                         string
	}{
		{"bearer route without a token", "GET", "/v1/things/1", "", "", 401, "UNAUTHORIZED", ""},
		{"bearer route with a wrong token", "GET", "/v1/things/1", "", "nope", 401, "UNAUTHORIZED", ""},
		{"bearer route with the token", "GET", "/v1/things/1", "", testToken, 200, "", "tester"},
		{"open route without a token", "GET", "/v1/things/1/ws", "", "", 200, "", ""},
		{"open route with the token", "GET", "/v1/things/1/ws", "", testToken, 200, "", "tester"},
		{"strict decoding", "POST", "/v1/things", `{"name":"a","colour":"red"}`, testToken, 400, "BAD_REQUEST", ""},
		{"the route's own error", "POST", "/v1/things", `{}`, testToken, 409, "CONF_NOT_RUNNING", ""},
		{"created", "POST", "/v1/things", `{"name":"a"}`, testToken, 201, "", ""},
		{"method not served", "DELETE", "/v1/things/1", "", testToken, 405, "METHOD_NOT_ALLOWED", ""},
		{"the API's own routes still served", "GET", "/v1/domains/acme/license", "", "", 401, "UNAUTHORIZED", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := do(tc.method, tc.path, tc.body, tc.auth)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.code != "" {
				if got := errCode(body); got != tc.code {
					t.Fatalf("code %q, want %q: %s", got, tc.code, body)
				}
				if tc.status == 405 && hdr.Get("Allow") == "" {
					t.Fatal("405 without Allow")
				}
				return
			}
			var e echo
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatal(err)
			}
			if e.Holder != tc.holder || e.Has != (tc.holder != "") {
				t.Fatalf("holder %+v, want %q", e, tc.holder)
			}
		})
	}
}

// A route net/http cannot mount is an error of New, not a panic.
func TestMountedRouteErrors(t *testing.T) {
	h := newHarness(t)
	for name, routes := range map[string][]httpkit.Route{
		"no method":        {{Pattern: "/v1/x", Handler: http.NotFoundHandler()}},
		"no handler":       {{Pattern: "GET /v1/x"}},
		"clash with API's": {{Pattern: "GET /v1/conferences/{e164}", Handler: http.NotFoundHandler()}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(Options{Tokens: map[string]string{testToken: "tester"}, Platform: platform},
				Deps{Bus: testkit.Connect(t, h.nats, "bad"), Store: h.store, Config: config.Demo(), Routes: routes})
			if err == nil {
				t.Fatal("New accepted the route")
			}
		})
	}
}
