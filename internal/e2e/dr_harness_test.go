package e2e

import (
	"context"
	"fmt"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/audit"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/scheduler"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
	"github.com/convene/convene/internal/testkit/stackkit"
)

// dr is two platforms, each with its own redis-server and NATS server, in
// one test process: A's backup is B.
type dr struct {
	t              *testing.T
	cfg            *config.Config
	redisA, redisB *redistest.Server
	// storeA and storeB are the test's own connections to each platform's
	// store, whatever becomes of the platforms.
	storeA, storeB *store.Store
	natsA, natsB   string // host:port
	a, b           *stack.Stack
	clientA        *apiclient.Client
	clientB        *apiclient.Client
	nodes          int
	made           confSet // every conference create returned
}

// drSetup says how to start the two platforms.
type drSetup struct {
	nodes int
	// tune adjusts the topology before start.
	tune func(*config.Config)
}

// busAttempts bounds the tries to start both platforms' buses: their
// addresses must be in the topology before either starts, so they are
// picked free, and another process may take one before its server binds it.
const busAttempts = 3

// candidatePort is a loopback address nothing listened on a moment ago:
// only a candidate, which the embedded server then binds or fails to.
func candidatePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startDR(t *testing.T, nodes int) *dr {
	t.Helper()
	return startDRWith(t, drSetup{nodes: nodes})
}

func startDRWith(t *testing.T, s drSetup) *dr {
	t.Helper()
	d := &dr{t: t, nodes: s.nodes, made: confSet{}}
	d.redisA = redistest.Start(t, redistest.Options{})
	d.redisB = redistest.Start(t, redistest.Options{})
	d.storeA, d.storeB = testkit.OpenStore(t, d.redisA.URL()), testkit.OpenStore(t, d.redisB.URL())
	var err error
	for attempt := 1; ; attempt++ {
		d.natsA, d.natsB = candidatePort(t), candidatePort(t)
		d.cfg = drConfig(d)
		if s.tune != nil {
			s.tune(d.cfg)
		}
		d.cfg.Defaults()
		if err := d.cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		if d.b, err = d.tryPlatform("pb"); err == nil {
			if d.a, err = d.tryPlatform("pa"); err == nil {
				break
			}
			d.stop(d.b)
		}
		if attempt == busAttempts {
			t.Fatalf("the platforms did not start in %d attempts (buses on free ports): %v", busAttempts, err)
		}
		t.Logf("the platforms did not start (a bus port taken?), trying other ports: %v", err)
	}
	for _, st := range []*stack.Stack{d.b, d.a} {
		t.Cleanup(func() { d.stop(st) })
		d.waitNodes(st)
	}
	d.clientB = apiclient.New("http://"+d.b.API.Addr(), token)
	d.clientA = apiclient.New("http://"+d.a.API.Addr(), token)
	d.waitWatched("pa")
	return d
}

// waitWatched waits until pb's monitor has heard moid answer: until then
// pb holds it normal only because it has not heard otherwise, and gives
// it a start-up grace before its silence counts.
func (d *dr) waitWatched(moid string) {
	d.t.Helper()
	testkit.Eventually(d.t, testkit.Wait, testkit.Cond(fmt.Sprintf("pb to hear platform %s answer", moid), func() bool {
		for _, m := range d.b.PMS.Platforms().Masters {
			if m.Platform == moid {
				return m.State == protocol.PlatformNormal && m.Observed == protocol.PlatformNormal
			}
		}
		return false
	}))
}

// drConfig is the two platforms' topology. Liveness windows are those of
// the single-platform tests (heartbeat 100 ms × 8, a 2 s lease), which a
// loaded machine keeps.
func drConfig(d *dr) *config.Config {
	all := func(n int) license.Limits {
		l := license.Limits{}
		for _, c := range license.All() {
			l[c.String()] = n
		}
		return l
	}
	return &config.Config{
		Platforms: []config.Platform{
			{Moid: "pa", Name: "Platform A", NumberSegment: "51", Backups: []string{"pb"},
				Store: d.redisA.URL(), Bus: "nats://" + d.natsA,
				Rooms: []config.Room{{Moid: "a1", Type: "main"}, {Moid: "a2", Type: "secondary"}}},
			{Moid: "pb", Name: "Platform B", NumberSegment: "52",
				Store: d.redisB.URL(), Bus: "nats://" + d.natsB,
				Rooms: []config.Room{{Moid: "b1", Type: "main"}, {Moid: "b2", Type: "secondary"}}},
		},
		Domains: []config.Domain{
			{Moid: "tenant-a", Platform: "pa", License: all(1000)},
			{Moid: "tenant-b", Platform: "pb", License: all(1000)},
		},
		API: config.API{Tokens: []config.Token{{Name: "test", Token: token}}},
		Scheduler: config.Scheduler{
			NodeTimeout: 1500 * time.Millisecond, RMSTimeout: 3 * time.Second,
			EndCheckInterval: 100 * time.Millisecond, MonitorTTL: 2 * time.Second,
			LeaseTTL: 2 * time.Second, LeaseRenew: 100 * time.Millisecond,
			RestoreInterval: 200 * time.Millisecond, RestoreBackoff: 50 * time.Millisecond,
			StartGrace: 2 * time.Second, SweepInterval: time.Second,
		},
		RMS: config.RMS{HeartbeatInterval: 100 * time.Millisecond, MissedHeartbeats: 8, ConfListInterval: 500 * time.Millisecond, DisconnectGrace: 250 * time.Millisecond},
	}
}

// tryPlatform starts one platform's stack on its configured bus address.
func (d *dr) tryPlatform(moid string) (*stack.Stack, error) {
	cfg := *d.cfg
	cfg.Platform = moid
	redis, nats, prefix := d.redisA, d.natsA, "a"
	if moid == "pb" {
		redis, nats, prefix = d.redisB, d.natsB, "b"
	}
	st, err := stack.Start(context.Background(), stack.Options{
		Config: &cfg, Redis: redis.URL(), Listen: "127.0.0.1:0", NATSListen: nats, BusOverTCP: true,
		SimNodes: d.nodes, SimCapacity: 1000, NodePrefix: prefix,
	})
	if err != nil {
		return nil, fmt.Errorf("platform %s: %w", moid, err)
	}
	return st, nil
}

func (d *dr) stop(st *stack.Stack) {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st.Stop(c)
}

func (d *dr) waitNodes(st *stack.Stack) {
	d.t.Helper()
	testkit.Eventually(d.t, testkit.Wait, testkit.Cond("the nodes of "+st.Config.Platform+" up", func() bool {
		return stackkit.NodesUp(st) == d.nodes
	}))
}

// restartA starts platform A again after a crash, on the bus address the
// topology gives it.
func (d *dr) restartA() {
	d.t.Helper()
	st, err := d.tryPlatform("pa")
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { d.stop(st) })
	d.waitNodes(st)
	d.a = st
	d.clientA = apiclient.New("http://"+st.API.Addr(), token)
}

// waitPlatformState waits until B's PMS holds A in state.
func (d *dr) waitPlatformState(moid, state string) {
	d.t.Helper()
	testkit.Eventually(d.t, testkit.Wait, testkit.Cond(fmt.Sprintf("platform %s %s as seen from pb", moid, state), func() bool {
		for _, m := range d.b.PMS.Platforms().Masters {
			if m.Platform == moid {
				return m.State == state
			}
		}
		return false
	}))
}

func (d *dr) create(c *apiclient.Client, domain, name string) apiclient.Conference {
	d.t.Helper()
	conf, err := c.CreateConference(context.Background(), apiclient.CreateConferenceRequest{Name: name, Domain: domain, Scale: 8, Resolution: "720p", DurationMinutes: 60})
	if err != nil {
		d.t.Fatalf("create %s on %s: %v", name, domain, err)
	}
	d.made.add(conf)
	return conf
}

// hosted is what every live node of stacks hosts, by node.
func (d *dr) hosted(stacks ...*stack.Stack) map[string][]string { return liveHosted(stacks...) }

// settledAcross checks both stores against both platforms' nodes: every
// conference runs on exactly one live node of the platform it says it runs
// on; no conference runs on two platforms; licence counts hold.
func (d *dr) settledAcross(what string, live ...*stack.Stack) {
	d.t.Helper()
	testkit.Eventually(d.t, 20*time.Second, func() error {
		if ok, report := d.auditAcross(live...); !ok {
			return fmt.Errorf("%s: not settled:\n%s", what, report)
		}
		return nil
	})
}

func (d *dr) auditAcross(live ...*stack.Stack) (bool, string) {
	ctx := context.Background()
	hosted := d.hosted(live...)
	var b strings.Builder
	ok := true
	seen := map[string]string{}
	for node, l := range hosted {
		for _, e := range l {
			if other, dup := seen[e]; dup {
				ok = false
				fmt.Fprintf(&b, "%s runs on %s and %s\n", e, other, node)
			}
			seen[e] = node
		}
	}
	for _, st := range live {
		liveNodes := map[string]bool{}
		for _, n := range st.RMS.Nodes() {
			liveNodes[n.Node] = n.State == protocol.NodeUp
		}
		for _, store := range []struct {
			moid string
			st   *stack.Stack
		}{{"pa", d.a}, {"pb", d.b}} {
			s := d.storeOf(store.moid, st)
			if s == nil {
				continue
			}
			var domains []string
			for _, dm := range d.cfg.Domains {
				if dm.Platform == store.moid {
					domains = append(domains, dm.Moid)
				}
			}
			r, err := audit.Check(ctx, s, audit.Input{Platform: st.Config.Platform, Domains: domains, Live: liveNodes, Hosted: d.hostedBy(st)})
			if err != nil {
				return false, err.Error()
			}
			// Nodes of other platforms host what this platform's audit
			// does not see; only count this platform's own violations.
			for _, v := range r.Violations {
				if strings.Contains(v, "which the store does not know") || strings.Contains(v, "which the store attributes to") {
					continue // judged by the duplicate check above and the other store's audit
				}
				ok = false
				fmt.Fprintf(&b, "[store %s, platform %s] %s\n", store.moid, st.Config.Platform, v)
			}
			if r.Creating > 0 || r.Pending > 0 {
				ok = false
				fmt.Fprintf(&b, "[store %s, platform %s] %s\n", store.moid, st.Config.Platform, r)
			}
		}
	}
	return ok, b.String()
}

func (d *dr) hostedBy(st *stack.Stack) map[string][]string { return d.hosted(st) }

// storeOf is a platform's store as seen from a stack: its own, or the
// master's one the stack's scheduler connected to.
func (d *dr) storeOf(moid string, st *stack.Stack) *store.Store {
	if st.Config.Platform == moid {
		return st.Store
	}
	return st.PeerStore(moid)
}

// conferences is every conference create returned so far, after checking
// that exactly they run: take it before the fault.
func (d *dr) conferences() confSet {
	d.t.Helper()
	out := maps.Clone(d.made)
	d.sameConferences(out)
	return out
}

// domainsOf lists the user domains of a platform.
func (d *dr) domainsOf(platform string) map[string]bool {
	out := map[string]bool{}
	for _, dm := range d.cfg.Domains {
		if dm.Platform == platform {
			out[dm.Moid] = true
		}
	}
	return out
}

// sameConferences fails the test unless exactly the conferences of want
// run now, each in its source platform's store, running, with the same
// tenant and class, counted in that store's licence and hosted once, by
// the node the store names, among the live nodes of both platforms; and
// nothing else is stored or hosted. Call it once the platforms settled.
func (d *dr) sameConferences(want confSet) {
	d.t.Helper()
	ctx := context.Background()
	var stored []protocol.Conference
	var problems []string
	for _, s := range []struct {
		moid string
		st   *store.Store
	}{{"pa", d.storeA}, {"pb", d.storeB}} {
		confs, err := s.st.AllConferences(ctx)
		if err != nil {
			d.t.Fatal(err)
		}
		domains := d.domainsOf(s.moid)
		mine := confSet{}
		for e, k := range want {
			if domains[k.domain] {
				mine[e] = k
			}
		}
		for _, c := range confs {
			if !domains[c.Domain] {
				problems = append(problems, fmt.Sprintf("%s of domain %s is in platform %s's store", c.E164, c.Domain, s.moid))
			}
		}
		stored = append(stored, confs...)
		problems = append(problems, licenceProblems(d.t, s.st, mine, confs)...)
	}
	problems = append(problems, compareConferences(want, stored, liveHosted(d.a, d.b))...)
	if len(problems) > 0 {
		d.t.Fatalf("the conferences running are not the %d created:\n  %s", len(want), strings.Join(problems, "\n  "))
	}
}

// restorePasses waits until sc has run n more restore passes than now.
func (d *dr) restorePasses(sc *scheduler.Scheduler, n uint64) {
	d.t.Helper()
	from := sc.Activity().RestorePasses
	testkit.Eventually(d.t, testkit.Wait, testkit.Cond(fmt.Sprintf("%d restore passes of %s", n, sc.ID()), func() bool { return sc.Activity().RestorePasses >= from+n }))
}

// endChecks waits until sc has run n more end-time checks than now.
func (d *dr) endChecks(sc *scheduler.Scheduler, n uint64) {
	d.t.Helper()
	from := sc.Activity().EndChecks
	testkit.Eventually(d.t, testkit.Wait, testkit.Cond(fmt.Sprintf("%d end-time checks of %s", n, sc.ID()), func() bool { return sc.Activity().EndChecks >= from+n }))
}

// applied waits until sc has applied a platform state in which cond holds
// for platform A (as a master).
func (d *dr) applied(sc *scheduler.Scheduler, what string, cond func(protocol.PlatformInfo) bool) {
	d.t.Helper()
	testkit.Eventually(d.t, testkit.Wait, testkit.Cond(sc.ID()+" to apply "+what, func() bool {
		for _, m := range sc.Activity().Platforms.Masters {
			if m.Platform == "pa" {
				return cond(m)
			}
		}
		return false
	}))
}

// active waits for st's active scheduler.
func (d *dr) active(st *stack.Stack) *scheduler.Scheduler {
	d.t.Helper()
	var sc *scheduler.Scheduler
	testkit.Eventually(d.t, testkit.Wait, testkit.Cond("an active scheduler on "+st.Config.Platform, func() bool {
		sc = st.ActiveScheduler()
		return sc != nil
	}))
	return sc
}
