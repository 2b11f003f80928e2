package e2e

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/resources"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
	"github.com/convene/convene/internal/testkit/stackkit"
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
	client *apiclient.Client
	redis  *redistest.Server

	mu   sync.Mutex
	made confSet // every conference a create through the API returned
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
			EndCheckInterval: 50 * time.Millisecond, MonitorTTL: 2 * time.Second,
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
	st := stackkit.Start(t, stack.Options{
		Config: cfg, Redis: r.URL(), Listen: "127.0.0.1:0", SimNodes: s.nodes, SimCapacity: s.capacity,
		Schedulers: s.schedulers, BusOverTCP: s.tcpBus, NATSListen: natsListen(s.tcpBus),
	})
	e := &env{t: t, st: st, client: apiclient.New("http://"+st.API.Addr(), token), redis: r, made: confSet{}}
	return e
}

func (e *env) create(name string, mod ...func(*apiclient.CreateConferenceRequest)) (apiclient.Conference, error) {
	req := apiclient.CreateConferenceRequest{Name: name, Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 60}
	for _, m := range mod {
		m(&req)
	}
	c, err := e.client.CreateConference(context.Background(), req)
	if err == nil {
		e.mu.Lock()
		e.made.add(c)
		e.mu.Unlock()
	}
	return c, err
}

func (e *env) mustCreate(name string, mod ...func(*apiclient.CreateConferenceRequest)) apiclient.Conference {
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
	if ae, ok := err.(*apiclient.Error); ok {
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
		if strings.HasPrefix(k, "platform/") || strings.HasPrefix(k, "ops/") || k == "breakouts/instances" || k == "breakouts/secret" {
			continue // platform bookkeeping (leases, answers to writes that may be retried), not any conference's
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

func (e *env) events(e164, typ string) []apiclient.Event {
	e.t.Helper()
	evs, err := e.client.Events(context.Background(), apiclient.EventOptions{E164: e164})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []apiclient.Event
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
	testkit.Eventually(e.t, 15*time.Second, func() error {
		r, err := e.st.Audit(context.Background())
		switch {
		case err != nil:
			return fmt.Errorf("%s: not settled: %w", what, err)
		case !r.OK() || r.Creating != 0 || r.Pending != 0:
			return fmt.Errorf("%s: not settled: %s", what, r.String())
		}
		return nil
	})
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

// confKey is what makes a conference the same one after a fault: its
// tenant and its licence class (its number is the key of a confSet).
type confKey struct{ domain, class string }

func keyOf(domain string, scale int, resolution string) confKey {
	cl, err := license.ClassOf(scale, resolution)
	if err != nil {
		return confKey{domain, fmt.Sprintf("%d_%s (%v)", scale, resolution, err)}
	}
	return confKey{domain, cl.String()}
}

// confSet is the conferences a test expects to run, by number.
type confSet map[string]confKey

// add records a conference the API returned.
func (s confSet) add(c apiclient.Conference) { s[c.E164] = keyOf(c.Domain, c.Scale, c.Resolution) }

// conferences is every conference created through the API so far, after
// checking that exactly they run: take it once the conferences a test
// creates run, before the fault.
func (e *env) conferences() confSet {
	e.t.Helper()
	e.mu.Lock()
	out := maps.Clone(e.made)
	e.mu.Unlock()
	e.sameConferences(out)
	return out
}

// sameConferences fails the test unless exactly the conferences of want
// run now: the store holds each of them, running, with the same tenant
// and class, and nothing else; the licence counts are theirs; and the live
// nodes host each exactly once, on the node the store names, and nothing
// else. Call it once the platform settled: a conference the system quietly
// ended, or one that appeared, is a failure.
func (e *env) sameConferences(want confSet) {
	e.t.Helper()
	ctx := context.Background()
	confs, err := e.st.Store.AllConferences(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	problems := compareConferences(want, confs, liveHosted(e.st))
	problems = append(problems, licenceProblems(e.t, e.st.Store, want, confs)...)
	if len(problems) > 0 {
		e.t.Fatalf("the conferences running are not the %d created:\n  %s", len(want), strings.Join(problems, "\n  "))
	}
}

// liveHosted is what the running simulated nodes of stacks host, by node.
func liveHosted(stacks ...*stack.Stack) map[string][]string {
	out := map[string][]string{}
	for _, st := range stacks {
		for _, n := range st.Nodes {
			if !n.Running() {
				continue
			}
			for _, c := range n.Conferences() {
				out[n.ID()] = append(out[n.ID()], c.E164)
			}
		}
	}
	return out
}

// compareConferences lists how the stored conferences and what nodes host
// differ from want: each conference of want stored once, running, same
// tenant and class, hosted by its node and no other (a legacy conference
// stays attributed to its node, hosted or not); nothing else stored or
// hosted.
func compareConferences(want confSet, stored []protocol.Conference, hosted map[string][]string) []string {
	var out []string
	hostedBy := map[string][]string{}
	for node, l := range hosted {
		for _, e := range l {
			hostedBy[e] = append(hostedBy[e], node)
		}
	}
	seen := map[string]bool{}
	for _, c := range stored {
		k, ok := want[c.E164]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s (%s) is in the store but was not created", c.E164, c.State))
			continue
		case seen[c.E164]:
			out = append(out, fmt.Sprintf("%s is in the store twice", c.E164))
			continue
		}
		seen[c.E164] = true
		if got := keyOf(c.Domain, c.Scale, c.Resolution); got != k {
			out = append(out, fmt.Sprintf("%s is of domain %s class %s; it was created for %s class %s", c.E164, got.domain, got.class, k.domain, k.class))
		}
		if c.State != protocol.StateRunning {
			out = append(out, fmt.Sprintf("%s is %s (%s), not running", c.E164, c.State, c.Reason))
			continue
		}
		hosts := hostedBy[c.E164]
		switch {
		case c.Legacy && len(hosts) == 0:
		case len(hosts) != 1 || hosts[0] != c.Node:
			out = append(out, fmt.Sprintf("%s runs on %s by the store; live nodes %v host it", c.E164, c.Node, hosts))
		}
	}
	var lost []string
	for e := range want {
		if !seen[e] {
			lost = append(lost, e)
		}
	}
	sort.Strings(lost)
	for _, e := range lost {
		out = append(out, fmt.Sprintf("%s was lost: the store no longer has it (hosted by %v)", e, hostedBy[e]))
	}
	for e, nodes := range hostedBy {
		if _, ok := want[e]; !ok {
			out = append(out, fmt.Sprintf("nodes %v host %s, which was not created", nodes, e))
		}
	}
	if len(out) > 0 {
		out = append(out, fmt.Sprintf("(%d in the store, %d created)", len(stored), len(want)))
	}
	sort.Strings(out)
	return out
}

// licenceProblems lists the licence counts in st that differ from the
// conferences of want it holds.
func licenceProblems(t *testing.T, st *store.Store, want confSet, stored []protocol.Conference) []string {
	t.Helper()
	counts := map[confKey]int{}
	for _, c := range stored {
		if _, ok := want[c.E164]; ok {
			counts[want[c.E164]]++
		}
	}
	domains := map[string]bool{}
	for _, k := range want {
		domains[k.domain] = true
	}
	var out []string
	for d := range domains {
		u, err := st.License(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		for _, cl := range license.All() {
			k := confKey{d, cl.String()}
			if got := u.InUse[cl.String()]; got != counts[k] {
				out = append(out, fmt.Sprintf("domain %s counts %d conferences of class %s; %d of those created run", d, got, cl, counts[k]))
			}
		}
	}
	return out
}

var barrierSeq atomic.Int64

// barrier returns once RMS's liveness checks have looked past now: a
// throw-away node (a recorder, so never offered a conference) registers
// on a connection of its own and never beats. With closeConn its
// connection ends at once and it goes down when the disconnect grace
// ends, after that of every connection that ended before it; otherwise it
// goes down at its heartbeat deadline, after every node whose last beat
// came before now missed its own. Either way, RMS has judged those nodes
// by the time it returns: a test that shows nothing happened waits for
// this instead of sleeping.
func (e *env) barrier(closeConn bool) {
	e.t.Helper()
	id := fmt.Sprintf("barrier-%d", barrierSeq.Add(1))
	b, err := e.st.Connect(resources.NodeConnName(id))
	if err != nil {
		e.t.Fatal(err)
	}
	defer b.Close()
	room := e.st.Config.Local().Rooms[0].Moid
	req := protocol.RegisterReq{Type: protocol.MCURegisterReq, Node: id, IP: "127.0.9.9", PID: "1", Room: room,
		Platform: e.st.Config.Platform, Capacity: 1, Kind: resources.KindVRS}
	if err := b.Call(context.Background(), protocol.SubjectRMSNodes(e.st.Config.Platform), req, nil); err != nil {
		e.t.Fatal(err)
	}
	if closeConn {
		b.Close()
	}
	testkit.Eventually(e.t, testkit.Wait, testkit.Cond("RMS to take the barrier node "+id+" down", func() bool {
		for _, n := range e.st.RMS.Nodes() {
			if n.Node == id {
				return n.State == protocol.NodeDown
			}
		}
		return false
	}))
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

func natsListen(tcp bool) string {
	if tcp {
		return "127.0.0.1:0"
	}
	return "none"
}
