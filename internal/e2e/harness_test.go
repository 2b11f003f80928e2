package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/api"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/stack"
)

const token = "e2e-token-0123456789"

// setup says how to start a platform for a test.
type setup struct {
	nodes    int
	capacity int
	// limit of 8_720p for domain "acme" (other classes get 1000).
	limit int
	// tune adjusts the configuration before start.
	tune func(*config.Config)
	// schedulers running (one active); default 1.
	schedulers int
	// aof runs redis-server with an append-only file.
	aof bool
	// tcpBus connects every service to the bus over TCP, so it can restart.
	tcpBus bool
}

// env is one platform running in the test process against a real
// redis-server and the embedded NATS.
type env struct {
	t      *testing.T
	st     *stack.Stack
	client *api.Client
	redis  *redistest.Server
}

func testConfig(limit int) *config.Config {
	all := func(n int) license.Limits {
		l := license.Limits{}
		for _, c := range license.All() {
			l[c.String()] = n
		}
		return l
	}
	acme := all(1000)
	acme["8_720p"] = limit
	c := &config.Config{
		Platforms: []config.Platform{
			{Moid: "p1", Name: "Platform one", NumberSegment: "51", Rooms: []config.Room{
				{Moid: "r1", Type: "main"}, {Moid: "r2", Type: "secondary"},
			}},
			{Moid: "p2", NumberSegment: "52", Rooms: []config.Room{{Moid: "r3"}}},
		},
		Domains: []config.Domain{
			{Moid: "acme", Platform: "p1", License: acme},
			{Moid: "elsewhere", Platform: "p2", License: all(10)},
			{Moid: "closed", Platform: "p1", Disabled: true, License: all(10)},
		},
		API: config.API{Tokens: []config.Token{{Name: "test", Token: token}}},
		Scheduler: config.Scheduler{
			NodeTimeout: 1500 * time.Millisecond, RMSTimeout: 3 * time.Second,
			EndCheckInterval: 50 * time.Millisecond, MonitorTTL: 400 * time.Millisecond,
			LeaseTTL: 2 * time.Second, LeaseRenew: 100 * time.Millisecond,
			RestoreInterval: 200 * time.Millisecond, RestoreBackoff: 50 * time.Millisecond,
			StartGrace: 2 * time.Second, SweepInterval: time.Second,
		},
		RMS: config.RMS{HeartbeatInterval: 100 * time.Millisecond, MissedHeartbeats: 8, ConfListInterval: 500 * time.Millisecond, DisconnectGrace: 250 * time.Millisecond},
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

func start(t *testing.T, s setup) *env {
	t.Helper()
	if s.capacity == 0 {
		s.capacity = 1000
	}
	if s.limit == 0 {
		s.limit = 1000
	}
	cfg := testConfig(s.limit)
	if s.tune != nil {
		s.tune(cfg)
	}
	r := redistest.Start(t, redistest.Options{AOF: s.aof})
	ctx := context.Background()
	st, err := stack.Start(ctx, stack.Options{
		Config: cfg, Redis: r.URL(), Listen: "127.0.0.1:0", SimNodes: s.nodes, SimCapacity: s.capacity,
		Schedulers: s.schedulers, BusOverTCP: s.tcpBus, NATSListen: natsListen(s.tcpBus),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st.Stop(c)
	})
	e := &env{t: t, st: st, client: api.NewClient("http://"+st.API.Addr(), token), redis: r}
	eventually(t, fmt.Sprintf("%d nodes registered", s.nodes), func() bool {
		up := 0
		for _, n := range st.RMS.Nodes() {
			if n.State == protocol.NodeUp {
				up++
			}
		}
		return up == s.nodes
	})
	return e
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) create(name string, mod ...func(*api.CreateConferenceRequest)) (api.Conference, error) {
	req := api.CreateConferenceRequest{Name: name, Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 60}
	for _, m := range mod {
		m(&req)
	}
	return e.client.CreateConference(context.Background(), req)
}

func (e *env) mustCreate(name string, mod ...func(*api.CreateConferenceRequest)) api.Conference {
	e.t.Helper()
	c, err := e.create(name, mod...)
	if err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
	return c
}

// apiCode is the error code of an API error, or "" for nil.
func apiCode(err error) string {
	if err == nil {
		return ""
	}
	if ae, ok := err.(*api.APIError); ok {
		return ae.Code
	}
	return "not an API error: " + err.Error()
}

// storeKeys lists every key in the store but the ones the platform keeps
// regardless of conferences (domains, number counters).
func (e *env) storeKeys() []string {
	e.t.Helper()
	keys, err := e.st.Store.Client().Keys(context.Background(), "*").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, "domain/") && (strings.HasSuffix(k, "/info") || strings.HasSuffix(k, "/license")) {
			continue
		}
		if strings.HasPrefix(k, "platform/") || k == "breakouts/instances" || k == "breakouts/secret" {
			continue // platform bookkeeping, not any conference's
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// inUse is a domain's licence count of a class.
func (e *env) inUse(domain, class string) int {
	e.t.Helper()
	u, err := e.st.Store.License(context.Background(), domain)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.InUse[class]
}

// hosted counts the conferences every simulated node hosts.
func (e *env) hosted() map[string]int {
	out := map[string]int{}
	for _, n := range e.st.Nodes {
		out[n.ID()] = len(n.Conferences())
	}
	return out
}

func (e *env) events(e164, typ string) []api.Event {
	e.t.Helper()
	evs, err := e.client.Events(context.Background(), api.EventOptions{E164: e164})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []api.Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// settled waits until every invariant holds and nothing is creating or
// pending-restore, then returns the report.
func (e *env) settled(what string) {
	e.t.Helper()
	var last string
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := e.st.Audit(context.Background())
		if err == nil && r.OK() && r.Creating == 0 && r.Pending == 0 {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = r.String()
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not settled after 15s: %s", what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// placement maps each running conference to its node.
func (e *env) placement() map[string]string {
	e.t.Helper()
	confs, err := e.st.Store.AllConferences(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range confs {
		out[c.E164] = c.Node
	}
	return out
}

// createN creates n conferences and returns their numbers.
func (e *env) createN(n int) []string {
	e.t.Helper()
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, e.mustCreate(fmt.Sprintf("conf %d", i)).E164)
	}
	return out
}

// nodeIndex finds the stack's index of a simulated node.
func (e *env) nodeIndex(id string) int {
	for i, n := range e.st.Nodes {
		if n.ID() == id {
			return i
		}
	}
	e.t.Fatalf("no node %s", id)
	return -1
}

var listAll = api.ListOptions{}

func natsListen(tcp bool) string {
	if tcp {
		return "127.0.0.1:0"
	}
	return "none"
}
