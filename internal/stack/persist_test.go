package stack_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/testkit"
	"github.com/convene/convene/internal/testkit/stackkit"
)

const token = "stack-test-token-0123456789"

func restartConfig() *config.Config {
	all := func(n int) license.Limits {
		l := license.Limits{}
		for _, c := range license.All() {
			l[c.String()] = n
		}
		return l
	}
	c := &config.Config{
		Platforms: []config.Platform{{Moid: "p1", Name: "Platform one", NumberSegment: "51", Rooms: []config.Room{
			{Moid: "r1", Type: "main"}, {Moid: "r2", Type: "secondary"},
		}}},
		Domains: []config.Domain{
			{Moid: "acme", Platform: "p1", License: all(50)},
			{Moid: "globex", Platform: "p1", License: all(50)},
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

// startOn starts a platform on the embedded store kept in dir, with three
// simulated nodes, and waits for its nodes and its scheduler.
func startOn(t *testing.T, cfg *config.Config, dir string) (*stack.Stack, *apiclient.Client) {
	t.Helper()
	st := stackkit.Start(t, stack.Options{
		Config: cfg, Listen: "127.0.0.1:0", NATSListen: "none", SimNodes: 3, SimCapacity: 100, DataDir: dir,
	})
	stackkit.Active(t, st)
	return st, apiclient.New("http://"+st.API.Addr(), token)
}

// identity is what makes a conference the same one.
func identity(e164, domain, name string, scale int, resolution string) string {
	return fmt.Sprintf("%s %s %q %d_%s", e164, domain, name, scale, resolution)
}

// running lists the conferences the store has running on a node that
// hosts them, and says what else it sees.
func running(st *stack.Stack) (map[string]string, string) {
	confs, err := st.Store.AllConferences(context.Background())
	if err != nil {
		return nil, err.Error()
	}
	hostedBy := map[string][]string{}
	for _, n := range st.Nodes {
		for _, h := range n.Conferences() {
			hostedBy[h.E164] = append(hostedBy[h.E164], n.ID())
		}
	}
	out := map[string]string{}
	var other []string
	for _, c := range confs {
		on := hostedBy[c.E164]
		if c.State != protocol.StateRunning || len(on) != 1 || on[0] != c.Node {
			other = append(other, fmt.Sprintf("%s %s on %q hosted by %v", c.E164, c.State, c.Node, on))
			continue
		}
		out[c.E164] = identity(c.E164, c.Domain, c.Name, c.Scale, c.Resolution)
	}
	for e164, on := range hostedBy {
		if _, ok := out[e164]; !ok {
			other = append(other, fmt.Sprintf("%s hosted by %v, not running in the store", e164, on))
		}
	}
	sort.Strings(other)
	return out, strings.Join(other, "; ")
}

// Stopping and starting a platform on the embedded store with a data
// directory keeps every conference, licence and template, and the
// scheduler's start-up restores the conferences onto the new nodes.
func TestEmbeddedStoreKeepsPlatformAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := restartConfig()
	ctx := context.Background()
	st, cl := startOn(t, cfg, dir)

	if _, err := cl.SetLicense(ctx, "acme", apiclient.SetLicenseRequest{Limits: license.Limits{"8_720p": 37}}); err != nil {
		t.Fatal(err)
	}
	tpl, err := cl.CreateTemplate(ctx, apiclient.TemplateRequest{Name: "weekly sync", Domain: "acme", Scale: 32, Resolution: "1080p", DurationMinutes: 45, Public: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	kinds := []struct {
		domain, resolution string
		scale              int
	}{{"acme", "720p", 8}, {"acme", "1080p", 32}, {"globex", "720p", 8}}
	for i := range 24 {
		k := kinds[i%len(kinds)]
		c, err := cl.CreateConference(ctx, apiclient.CreateConferenceRequest{
			Name: fmt.Sprintf("meeting %d", i), Domain: k.domain, Scale: k.scale, Resolution: k.resolution, DurationMinutes: 120,
		})
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		want[c.E164] = identity(c.E164, k.domain, c.Name, k.scale, k.resolution)
	}
	// One created and ended: it must not come back.
	gone, err := cl.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: "ended", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 30})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.EndConference(ctx, gone.E164); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() error {
		if got, other := running(st); !equal(got, want) || other != "" {
			return fmt.Errorf("every conference running before the restart: %d of %d running; %s", len(got), len(want), other)
		}
		return nil
	})
	stackkit.Stop(st)

	st2, cl2 := startOn(t, cfg, dir)
	testkit.Eventually(t, 30*time.Second, func() error {
		if got, other := running(st2); !equal(got, want) || other != "" {
			return fmt.Errorf("the same conferences running again on the new nodes: %d of %d running; %s", len(got), len(want), other)
		}
		return nil
	})
	for _, n := range st2.Nodes {
		for _, h := range n.Conferences() {
			if _, ok := want[h.E164]; !ok {
				t.Fatalf("node %s hosts %s, which was not running before", n.ID(), h.E164)
			}
		}
	}
	// Licence counts equal the conferences; the limit set at run time
	// is kept.
	counts := map[string]license.Limits{"acme": {}, "globex": {}}
	for _, id := range want {
		f := strings.Fields(id)
		counts[f[1]][f[len(f)-1]]++
	}
	for domain, byClass := range counts {
		l, err := cl2.License(ctx, domain)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range license.All() {
			if l.InUse[c.String()] != byClass[c.String()] {
				t.Fatalf("%s %s: licence counts %d in use, %d running", domain, c, l.InUse[c.String()], byClass[c.String()])
			}
		}
		if domain == "acme" && l.Limits["8_720p"] != 37 {
			t.Fatalf("acme 8_720p limit %d after the restart, want the 37 set before it", l.Limits["8_720p"])
		}
	}
	got, err := cl2.Template(ctx, tpl.E164)
	if err != nil {
		t.Fatalf("the template after the restart: %v", err)
	}
	if got.Name != tpl.Name || got.Domain != "acme" || got.Scale != 32 || got.Resolution != "1080p" || got.DurationMinutes != 45 {
		t.Fatalf("the template after the restart is %+v, want %+v", got, tpl)
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
