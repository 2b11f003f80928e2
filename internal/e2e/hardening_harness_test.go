package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/testkit"
	"github.com/convene/convene/internal/testkit/stackkit"
)

// The hardening tests start their platforms with this harness of their
// own, and judge every outcome by the exact conferences that must run:
// each by number, tenant and licence class, stored once, running, hosted
// by exactly the node the store names and by no other.

// hdOptions say how to start a platform for a hardening test.
type hdOptions struct {
	nodes      int
	schedulers int
	// slowDetection keeps RMS from declaring a silent or disconnected node
	// down for the length of a test: its faults happen in the grace.
	slowDetection bool
	aof           bool
	tune          func(*config.Config)
	// redis, when set, is the store to use instead of a fresh one.
	redis *redistest.Server
}

// hdEnv is one platform of a hardening test.
type hdEnv struct {
	t      *testing.T
	st     *stack.Stack
	client *apiclient.Client
	redis  *redistest.Server
}

const hdToken = "e2e-hardening-token-0123456789"

func hdConfig() *config.Config {
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = 5000
	}
	c := &config.Config{
		Platforms: []config.Platform{
			{Moid: "p1", Name: "Platform one", NumberSegment: "51", Rooms: []config.Room{
				{Moid: "r1", Type: "main"}, {Moid: "r2", Type: "secondary"},
			}},
		},
		Domains: []config.Domain{{Moid: "acme", Platform: "p1", License: limits}},
		API:     config.API{Tokens: []config.Token{{Name: "test", Token: hdToken}}},
		Scheduler: config.Scheduler{
			NodeTimeout: 1500 * time.Millisecond, RMSTimeout: 3 * time.Second,
			EndCheckInterval: 100 * time.Millisecond, MonitorTTL: 2 * time.Second,
			LeaseTTL: 2 * time.Second, LeaseRenew: 100 * time.Millisecond,
			RestoreInterval: 200 * time.Millisecond, RestoreBackoff: 50 * time.Millisecond,
			StartGrace: 2 * time.Second, SweepInterval: time.Second,
		},
		RMS: config.RMS{HeartbeatInterval: 100 * time.Millisecond, MissedHeartbeats: 8, ConfListInterval: 500 * time.Millisecond, DisconnectGrace: 250 * time.Millisecond},
	}
	c.Defaults()
	return c
}

func hdStart(t *testing.T, o hdOptions) *hdEnv {
	t.Helper()
	cfg := hdConfig()
	if o.slowDetection {
		// A minute of silence before a node counts as lost.
		cfg.RMS.MissedHeartbeats = 600
		cfg.RMS.DisconnectGrace = time.Minute
	}
	if o.tune != nil {
		o.tune(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := o.redis
	if r == nil {
		r = redistest.Start(t, redistest.Options{AOF: o.aof})
	}
	st := stackkit.Start(t, stack.Options{
		Config: cfg, Redis: r.URL(), Listen: "127.0.0.1:0", NATSListen: "none",
		SimNodes: o.nodes, SimCapacity: 5000, Schedulers: o.schedulers,
	})
	e := &hdEnv{t: t, st: st, client: apiclient.New("http://"+st.API.Addr(), hdToken), redis: r}
	return e
}

// hdIdent is what makes a conference the same one: its tenant and its
// licence class; its number is the key of an hdWant.
type hdIdent struct{ domain, class string }

func hdIdentOf(domain string, scale int, resolution string) hdIdent {
	cl, err := license.ClassOf(scale, resolution)
	if err != nil {
		return hdIdent{domain, fmt.Sprintf("%d_%s?", scale, resolution)}
	}
	return hdIdent{domain, cl.String()}
}

// hdWant is the conferences that must run, by number.
type hdWant map[string]hdIdent

func (w hdWant) add(c apiclient.Conference) { w[c.E164] = hdIdentOf(c.Domain, c.Scale, c.Resolution) }

func (w hdWant) without(e164 string) hdWant {
	out := hdWant{}
	for k, v := range w {
		if k != e164 {
			out[k] = v
		}
	}
	return out
}

func (e *hdEnv) create(name string, mod ...func(*apiclient.CreateConferenceRequest)) (apiclient.Conference, error) {
	req := apiclient.CreateConferenceRequest{Name: name, Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 60}
	for _, m := range mod {
		m(&req)
	}
	return e.client.CreateConference(context.Background(), req)
}

// createAll creates n conferences and returns them.
func (e *hdEnv) createAll(n int) hdWant {
	e.t.Helper()
	want := hdWant{}
	for i := range n {
		c, err := e.create(fmt.Sprintf("conf %d", i))
		if err != nil {
			e.t.Fatalf("create %d: %v", i, err)
		}
		want.add(c)
	}
	return want
}

// problems lists how the platform differs from exactly the conferences of
// want running: each stored once, running, of the same tenant and class,
// hosted by the node the store names and by no other running simulated
// node, that node not in avoid; nothing else stored or hosted; the licence
// counts those of want.
func (e *hdEnv) problems(want hdWant, avoid ...string) []string {
	ctx := context.Background()
	confs, err := e.st.Store.AllConferences(ctx)
	if err != nil {
		return []string{"store: " + err.Error()}
	}
	hostedBy := map[string][]string{}
	for _, n := range e.st.Nodes {
		if !n.Running() {
			continue
		}
		for _, c := range n.Conferences() {
			hostedBy[c.E164] = append(hostedBy[c.E164], n.ID())
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, c := range confs {
		id, ok := want[c.E164]
		if !ok {
			out = append(out, fmt.Sprintf("%s (%s on %s) is stored but was not created", c.E164, c.State, c.Node))
			continue
		}
		seen[c.E164] = true
		if got := hdIdentOf(c.Domain, c.Scale, c.Resolution); got != id {
			out = append(out, fmt.Sprintf("%s is %v, was created as %v", c.E164, got, id))
		}
		if c.State != protocol.StateRunning {
			out = append(out, fmt.Sprintf("%s is %s (%s)", c.E164, c.State, c.Reason))
			continue
		}
		for _, a := range avoid {
			if c.Node == a {
				out = append(out, fmt.Sprintf("%s is stored on %s, which must not host it", c.E164, a))
			}
		}
		if h := hostedBy[c.E164]; len(h) != 1 || h[0] != c.Node {
			out = append(out, fmt.Sprintf("%s runs on %s by the store; running nodes %v host it", c.E164, c.Node, h))
		}
	}
	for num := range want {
		if !seen[num] {
			out = append(out, fmt.Sprintf("%s was lost (hosted by %v)", num, hostedBy[num]))
		}
	}
	for num, nodes := range hostedBy {
		if _, ok := want[num]; !ok {
			out = append(out, fmt.Sprintf("%v host %s, which was not created", nodes, num))
		}
	}
	count := map[hdIdent]int{}
	domains := map[string]bool{"acme": true}
	for _, id := range want {
		count[id]++
		domains[id.domain] = true
	}
	for d := range domains {
		u, err := e.st.Store.License(ctx, d)
		if err != nil {
			return append(out, "licence: "+err.Error())
		}
		for _, cl := range license.All() {
			if got, w := u.InUse[cl.String()], count[hdIdent{d, cl.String()}]; got != w {
				out = append(out, fmt.Sprintf("domain %s counts %d conferences of class %s, %d run", d, got, cl, w))
			}
		}
	}
	sort.Strings(out)
	return out
}

// exactly waits until exactly the conferences of want run (see problems),
// and fails the test with what differs if they do not within 20 s.
func (e *hdEnv) exactly(what string, want hdWant, avoid ...string) {
	e.t.Helper()
	testkit.Eventually(e.t, 20*time.Second, func() error {
		if last := e.problems(want, avoid...); len(last) > 0 {
			return fmt.Errorf("%s: the conferences running are not the %d expected:\n  %s", what, len(want), strings.Join(last, "\n  "))
		}
		return nil
	})
}

// received counts the messages of a type a node received, for e164 ("" for
// any).
func received(n *medianode.Node, typ, e164 string) int {
	c := 0
	for _, r := range n.Received() {
		if r.Type == typ && (e164 == "" || r.E164 == e164) {
			c++
		}
	}
	return c
}

// counter reads a counter of the stack's metrics, summed over the series
// whose labels include those given.
func (e *hdEnv) counter(name string, labels map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.st.Metrics.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	return sumCounter(mfs, name, labels)
}

func sumCounter(mfs []*dto.MetricFamily, name string, labels map[string]string) float64 {
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}
