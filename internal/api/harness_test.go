package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

const (
	testToken = "test-token-0123456789"
	platform  = "plat-a"
)

// harness is an API server on httptest with a real embedded store and bus;
// fakes on a second bus connection stand in for the scheduler, RMS and
// registry.
type harness struct {
	t      *testing.T
	srv    *Server
	http   *httptest.Server
	client *apiclient.Client
	store  *store.Store
	embed  *store.Embedded
	nats   *bus.Embedded
	fakes  *bus.Bus
	reg    *prometheus.Registry
}

func newHarness(t *testing.T, tune ...func(*Options)) *harness {
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
	for _, moid := range []string{"acme", "empty"} {
		if _, err := st.PublishDomain(ctx, store.DomainInfo{Moid: moid, Name: moid, Used: true}, license.Limits{"8_720p": 5, "32_1080p": 2}); err != nil {
			t.Fatal(err)
		}
	}
	ne := testkit.BusServer(t, bus.EmbeddedOptions{NoListen: true})
	apiBus := testkit.Connect(t, ne, "api")
	fakes := testkit.Connect(t, ne, "fakes")

	opts := Options{
		Tokens:         map[string]string{testToken: "tester"},
		Platform:       platform,
		RequestTimeout: 2 * time.Second,
	}
	for _, f := range tune {
		f(&opts)
	}
	reg := prometheus.NewRegistry()
	srv, err := New(opts, Deps{Bus: apiBus, Store: st, Config: config.Demo(), Metrics: reg, Gatherer: reg})
	if err != nil {
		t.Fatal(err)
	}
	subs, err := srv.startAgent()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	})
	if err := apiBus.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	c := apiclient.New(hs.URL, testToken)
	t.Cleanup(c.CloseIdleConnections)
	return &harness{t: t, srv: srv, http: hs, client: c, store: st, embed: se, nats: ne, fakes: fakes, reg: reg}
}

// fake answers requests on a subject with what answer returns for each
// message, and remembers the messages.
type fake struct {
	mu   sync.Mutex
	msgs []*bus.Msg
	sub  *bus.Subscription
}

func (h *harness) fake(subject string, answer func(m *bus.Msg) any) *fake {
	h.t.Helper()
	f := &fake{}
	sub, err := h.fakes.Subscribe(subject, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		f.mu.Lock()
		f.msgs = append(f.msgs, m)
		f.mu.Unlock()
		if v := answer(m); v != nil {
			_ = m.Respond(v)
		}
	}))
	if err != nil {
		h.t.Fatal(err)
	}
	f.sub = sub
	h.t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := h.fakes.Flush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	return f
}

// stop unsubscribes the fake and waits until the bus knows.
func (f *fake) stop(h *harness) {
	h.t.Helper()
	_ = f.sub.Unsubscribe()
	if err := h.fakes.Flush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

func (f *fake) received() []*bus.Msg {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*bus.Msg(nil), f.msgs...)
}

func (f *fake) types() []string {
	var out []string
	for _, m := range f.received() {
		out = append(out, m.Type)
	}
	return out
}

// last decodes the last message received into v.
func (f *fake) last(t *testing.T, v any) {
	t.Helper()
	ms := f.received()
	if len(ms) == 0 {
		t.Fatal("the fake received nothing")
	}
	if err := ms[len(ms)-1].Decode(v); err != nil {
		t.Fatal(err)
	}
}

func nack(typ, code, msg string) protocol.Nack {
	return protocol.Nack{Type: typ, ErrCode: code, ErrMsg: msg}
}

// do sends a request with the test token and returns status and body.
func (h *harness) do(method, path, body string) (int, []byte) {
	h.t.Helper()
	return h.doAuth(method, path, body, "Bearer "+testToken)
}

func (h *harness) doAuth(method, path, body, auth string) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.http.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := h.http.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, data
}

// wantError checks an error response: status, code, and that the message
// holds want.
func wantError(t *testing.T, status int, body []byte, wantStatus int, wantCode, want string) {
	t.Helper()
	var eb codes.Envelope
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("error body %q is not the JSON envelope: %v", body, err)
	}
	if status != wantStatus || eb.Error.Code != wantCode || !strings.Contains(eb.Error.Message, want) {
		t.Fatalf("got %d %s %q; want %d %s with %q", status, eb.Error.Code, eb.Error.Message, wantStatus, wantCode, want)
	}
}

func decodeBody[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return v
}

// conference writes a running (or, with node "", creating) conference
// into the store as the scheduler would.
func (h *harness) conference(c protocol.Conference, node string) protocol.Conference {
	h.t.Helper()
	ctx := context.Background()
	if c.Domain == "" {
		c.Domain = "acme"
	}
	if c.Scale == 0 {
		c.Scale, c.Resolution = 8, "720p"
	}
	if c.DurationMinutes == 0 {
		c.DurationMinutes = 60
	}
	if c.Name == "" {
		c.Name = "weekly"
	}
	c.Platform, c.RealPlatform = platform, platform
	c.EndTime = time.Now().Add(time.Duration(c.DurationMinutes) * time.Minute).UnixMilli()
	cl, err := license.ClassOf(c.Scale, c.Resolution)
	if err != nil {
		h.t.Fatal(err)
	}
	e164, err := h.store.Reserve(ctx, store.Reservation{Conf: c, Class: cl, Numbering: store.Numbering{Platform: platform, Segment: "66", Digits: 5}})
	if err != nil {
		h.t.Fatal(err)
	}
	if node != "" {
		if _, err := h.store.Commit(ctx, store.Placement{E164: e164, Node: node, IP: "10.0.0.1", PID: "7", Room: "room-a1", RealPlatform: platform}); err != nil {
			h.t.Fatal(err)
		}
	}
	got, err := h.store.Conference(ctx, e164)
	if err != nil {
		h.t.Fatal(err)
	}
	return got
}

// equalJSON compares two values by their JSON encodings.
func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

var storeNumbering = store.Numbering{Platform: platform, Segment: "77", Digits: 5}
