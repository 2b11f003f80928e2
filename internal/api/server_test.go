package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

func TestAuth(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name string
		auth string
		want int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer not-the-token-at-all", http.StatusUnauthorized},
		{"token prefix", "Bearer " + testToken[:len(testToken)-1], http.StatusUnauthorized},
		{"token with suffix", "Bearer " + testToken + "x", http.StatusUnauthorized},
		{"basic scheme", "Basic " + testToken, http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"right token", "Bearer " + testToken, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := h.doAuth("GET", "/v1/platforms", "", tc.auth)
			if tc.want == http.StatusOK {
				if status != http.StatusOK {
					t.Fatalf("status %d, body %s", status, body)
				}
				return
			}
			wantError(t, status, body, http.StatusUnauthorized, codes.Unauthorized, "Authorization: Bearer")
		})
	}
	t.Run("open routes", func(t *testing.T) {
		if status, body := h.doAuth("GET", "/healthz", "", ""); status != http.StatusOK {
			t.Errorf("/healthz without a token: %d %s", status, body)
		}
		status, body := h.doAuth("GET", "/metrics", "", "")
		wantError(t, status, body, http.StatusUnauthorized, codes.Unauthorized, "Authorization: Bearer")
	})
}

func TestRouting(t *testing.T) {
	h := newHarness(t)
	t.Run("unknown route", func(t *testing.T) {
		status, body := h.do("GET", "/v1/nothing", "")
		wantError(t, status, body, http.StatusNotFound, codes.NotFound, "no route GET /v1/nothing")
	})
	t.Run("trailing slash", func(t *testing.T) {
		status, body := h.do("GET", "/v1/conferences/", "")
		wantError(t, status, body, http.StatusNotFound, codes.NotFound, "no route")
	})
	for _, tc := range []struct {
		method, path, allow string
	}{
		{"GET", "/v1/conferences", "POST"},
		{"PUT", "/v1/conferences/6600001", "DELETE, GET, PATCH, HEAD"},
		{"DELETE", "/v1/domains/acme/license", "GET, PUT, HEAD"},
		{"POST", "/healthz", "GET, HEAD"},
	} {
		t.Run("405 "+tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, h.http.URL+tc.path, nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := h.http.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
				t.Fatalf("status %d Allow %q; want 405 %q", resp.StatusCode, resp.Header.Get("Allow"), tc.allow)
			}
			status, body := h.do(tc.method, tc.path, "")
			wantError(t, status, body, http.StatusMethodNotAllowed, codes.MethodNotAllowed, "use "+tc.allow)
		})
	}
}

func TestHealthz(t *testing.T) {
	h := newHarness(t)
	status, body := h.do("GET", "/healthz", "")
	if got := decodeBody[apiclient.Health](t, body); status != http.StatusOK || got != (apiclient.Health{Status: "ok", Store: "ok", Bus: "ok"}) {
		t.Fatalf("healthy: %d %+v", status, got)
	}
	status, body = h.doAuth("GET", "/healthz", "", "")
	if got := decodeBody[apiclient.Health](t, body); status != http.StatusOK || got != (apiclient.Health{Status: "ok"}) {
		t.Fatalf("healthy, without a token: %d %+v", status, got)
	}
	addr := h.embed.Addr()
	h.embed.Close()
	status, body = h.do("GET", "/healthz", "")
	got := decodeBody[apiclient.Health](t, body)
	if status != http.StatusServiceUnavailable || got.Status != "unavailable" || !strings.HasPrefix(got.Store, "down: ") || got.Bus != "ok" {
		t.Fatalf("store down: %d %+v", status, got)
	}
	// Without a valid token, up or down and nothing more: not the store's
	// error, which names its address.
	for _, auth := range []string{"", "Bearer not-a-token-0123456789"} {
		status, body = h.doAuth("GET", "/healthz", "", auth)
		if got := decodeBody[apiclient.Health](t, body); status != http.StatusServiceUnavailable || got != (apiclient.Health{Status: "unavailable"}) {
			t.Fatalf("store down, auth %q: %d %s", auth, status, body)
		}
		if strings.Contains(string(body), addr) {
			t.Fatalf("health without a token shows the store's address %s: %s", addr, body)
		}
	}
	h.nats.Shutdown()
	testkit.Await(t, "the bus to report down", func() bool {
		status, body = h.do("GET", "/healthz", "")
		return decodeBody[apiclient.Health](t, body).Bus == "disconnected"
	})
	if status != http.StatusServiceUnavailable {
		t.Fatalf("bus down: %d", status)
	}
}

func TestMetrics(t *testing.T) {
	h := newHarness(t)
	h.fake(protocol.SubjectCMMAU(platform), func(m *bus.Msg) any {
		return nack(protocol.MAUCreateConfNack, codes.LicenseExhausted, "full")
	})
	h.do("GET", "/v1/platforms", "")
	h.do("GET", "/v1/platforms", "")
	h.do("POST", "/v1/conferences", createBody)
	h.do("GET", "/v1/nope", "")

	for _, tc := range []struct {
		route, code string
		want        float64
	}{
		{"GET /v1/platforms", "200", 2},
		{"POST /v1/conferences", "409", 1},
		{"unmatched", "404", 1},
	} {
		if n := counterValue(t, h.reg, tc.route, tc.code); n != tc.want {
			t.Errorf("convene_api_requests_total{route=%q,code=%q} = %v, want %v", tc.route, tc.code, n, tc.want)
		}
	}
	status, body := h.do("GET", "/metrics", "")
	text := string(body)
	if status != http.StatusOK ||
		!strings.Contains(text, `convene_api_requests_total{code="200",route="GET /v1/platforms"} 2`) ||
		!strings.Contains(text, `convene_api_request_seconds_count{route="POST /v1/conferences"} 1`) {
		t.Fatalf("/metrics: %d\n%s", status, text)
	}
}

func TestNewChecks(t *testing.T) {
	st := testkit.Store(t, testkit.Embedded)
	_, b := testkit.Bus(t)
	deps := Deps{Bus: b, Store: st, Config: config.Demo()}
	toks := map[string]string{testToken: "t"}
	for _, tc := range []struct {
		name string
		opts Options
		deps Deps
		want string
	}{
		{"no tokens", Options{}, deps, "no tokens"},
		{"empty token", Options{Tokens: map[string]string{"": "x"}}, deps, "empty"},
		{"no bus", Options{Tokens: toks}, Deps{Store: st, Config: config.Demo()}, "required"},
		{"bad platform", Options{Tokens: toks, Platform: "a.b"}, deps, "platform"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts, tc.deps); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error about %q", err, tc.want)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		s, err := New(Options{Tokens: toks}, deps)
		if err != nil {
			t.Fatal(err)
		}
		if s.opts.Listen != "127.0.0.1:8080" || s.opts.Platform != "plat-a" || s.opts.MaxDurationMinutes != 10080 || s.opts.RequestTimeout != 10*time.Second {
			t.Fatalf("defaults = %+v", s.opts)
		}
	})
	// The longest booking is the scheduler's to decide: the API's form
	// check takes the configuration's limit, not a number of its own.
	t.Run("the scheduler's longest booking", func(t *testing.T) {
		cfg := config.Demo()
		cfg.Scheduler.MaxDurationMinutes = 600
		s, err := New(Options{Tokens: toks}, Deps{Bus: b, Store: st, Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		if s.opts.MaxDurationMinutes != 600 {
			t.Fatalf("MaxDurationMinutes = %d, want the scheduler's 600", s.opts.MaxDurationMinutes)
		}
	})
}

func TestStartShutdown(t *testing.T) {
	h := newHarness(t)
	srv, err := New(Options{Listen: "127.0.0.1:0", Tokens: map[string]string{testToken: "t"}},
		Deps{Bus: testkit.Connect(t, h.nats, "api2"), Store: h.store, Config: config.Demo()})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Addr() != "" {
		t.Fatalf("Addr before Start = %q", srv.Addr())
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err == nil {
		t.Fatal("second Start succeeded")
	}
	c := apiclient.New("http://"+srv.Addr(), testToken)
	defer c.CloseIdleConnections()
	if hl, err := c.Health(ctx); err != nil || hl.Status != "ok" {
		t.Fatalf("Health = %+v, %v", hl, err)
	}
	// The started server's agent records notifications too.
	if err := h.fakes.Publish(protocol.SubjectCMNotifications, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: "6600042", State: "running"}); err != nil {
		t.Fatal(err)
	}
	testkit.Await(t, "the event on the started server", func() bool {
		evs, err := c.Events(ctx, apiclient.EventOptions{E164: "6600042"})
		return err == nil && len(evs) == 1
	})
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Health(ctx); err == nil {
		t.Fatal("Health answered after Shutdown")
	}
}

// counterValue reads convene_api_requests_total{route,code} from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, route, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "convene_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
