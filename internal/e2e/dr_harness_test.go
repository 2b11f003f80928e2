package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/api"
	"github.com/convene/convene/internal/audit"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/store"
)

// dr is two platforms, each with its own redis-server and NATS server, in
// one test process: A's backup is B.
type dr struct {
	t              *testing.T
	cfg            *config.Config
	redisA, redisB *redistest.Server
	natsA, natsB   string // host:port
	a, b           *stack.Stack
	clientA        *api.Client
	clientB        *api.Client
	nodes          int
}

func freeHostPort(t *testing.T) string {
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
	d := &dr{t: t, nodes: nodes}
	d.redisA = redistest.Start(t, redistest.Options{})
	d.redisB = redistest.Start(t, redistest.Options{})
	d.natsA, d.natsB = freeHostPort(t), freeHostPort(t)
	all := func(n int) license.Limits {
		l := license.Limits{}
		for _, c := range license.All() {
			l[c.String()] = n
		}
		return l
	}
	d.cfg = &config.Config{
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
			LeaseTTL: 600 * time.Millisecond, LeaseRenew: 100 * time.Millisecond,
			RestoreInterval: 200 * time.Millisecond, RestoreBackoff: 50 * time.Millisecond,
			StartGrace: 2 * time.Second, SweepInterval: time.Second,
		},
		RMS: config.RMS{HeartbeatInterval: 100 * time.Millisecond, MissedHeartbeats: 4, ConfListInterval: 500 * time.Millisecond, DisconnectGrace: 300 * time.Millisecond},
	}
	d.cfg.Defaults()
	if err := d.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d.b = d.startPlatform("pb")
	d.a = d.startPlatform("pa")
	d.clientB = api.NewClient("http://"+d.b.API.Addr(), token)
	d.clientA = api.NewClient("http://"+d.a.API.Addr(), token)
	d.waitPlatformState("pa", protocol.PlatformNormal)
	return d
}

// startPlatform starts one platform's stack (again).
func (d *dr) startPlatform(moid string) *stack.Stack {
	d.t.Helper()
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
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st.Stop(c)
	})
	eventually(d.t, "the nodes of "+moid+" up", func() bool {
		up := 0
		for _, n := range st.RMS.Nodes() {
			if n.State == protocol.NodeUp {
				up++
			}
		}
		return up == d.nodes
	})
	if moid == "pa" && d.clientA != nil {
		d.a = st
		d.clientA = api.NewClient("http://"+st.API.Addr(), token)
	}
	return st
}

// waitPlatformState waits until B's PMS holds A in state.
func (d *dr) waitPlatformState(moid, state string) {
	d.t.Helper()
	eventually(d.t, fmt.Sprintf("platform %s %s as seen from pb", moid, state), func() bool {
		for _, m := range d.b.PMS.Platforms().Masters {
			if m.Platform == moid {
				return m.State == state
			}
		}
		return false
	})
}

func (d *dr) create(c *api.Client, domain, name string) api.Conference {
	d.t.Helper()
	conf, err := c.CreateConference(context.Background(), api.CreateConferenceRequest{Name: name, Domain: domain, Scale: 8, Resolution: "720p", DurationMinutes: 60})
	if err != nil {
		d.t.Fatalf("create %s on %s: %v", name, domain, err)
	}
	return conf
}

// hosted is what every live node of both platforms hosts, by node.
func (d *dr) hosted(stacks ...*stack.Stack) map[string][]string {
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

// settledAcross checks both stores against both platforms' nodes: every
// conference runs on exactly one live node of the platform it says it runs
// on; no conference runs on two platforms; licence counts hold.
func (d *dr) settledAcross(what string, live ...*stack.Stack) {
	d.t.Helper()
	var last string
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, report := d.auditAcross(live...)
		if ok {
			return
		}
		last = report
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: not settled after 20s:\n%s", what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
