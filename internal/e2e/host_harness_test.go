package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/convene/convene/internal/api"
	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"

	_ "github.com/convene/convene/internal/bus/busplugin" // the bus plugin registers itself
)

// hostDef is one host of a deployment: its name and the servers: section
// of its host file.
type hostDef struct {
	name    string
	servers string
}

// The same servers as one host, and split over six as deploy/split/ does:
// the API, two schedulers (one active by lease), the control services,
// breakout and the media-node simulators.
var (
	oneHost = []hostDef{{"all", `
  rms:       {plugin: convene.rms}
  pms:       {plugin: convene.pms}
  scheduler: {plugin: convene.scheduler}
  registry:  {plugin: convene.registry}
  nodes:     {plugin: convene.mcusim, count: 3}
  breakout:  {plugin: convene.breakout}
  api:       {plugin: convene.api, listen: "127.0.0.1:0", hosts_bus: bus}`}}
	splitHosts = []hostDef{
		{"control", `
  rms:      {plugin: convene.rms}
  pms:      {plugin: convene.pms}
  registry: {plugin: convene.registry}`},
		{"sched-a", `
  scheduler: {plugin: convene.scheduler, id: css-a}`},
		{"sched-b", `
  scheduler: {plugin: convene.scheduler, id: css-b}`},
		{"nodes", `
  nodes: {plugin: convene.mcusim, count: 3}`},
		{"breakout", `
  breakout: {plugin: convene.breakout}
  api:      {plugin: convene.api, listen: "127.0.0.1:0"}`},
		{"api", `
  api: {plugin: convene.api, listen: "127.0.0.1:0", hosts_bus: bus}`},
	}
)

// cluster is a deployment of host.Host values in the test process, joined
// by a real NATS server (embedded in the test, reached over TCP with the
// roles' credentials as an external one is) and a real redis-server.
type cluster struct {
	t      *testing.T
	hosts  map[string]*host.Host
	order  []string
	client *apiclient.Client
	// store is the test's own connection to the platform's store.
	store *store.Store

	mu   sync.Mutex
	made confSet
}

func startCluster(t *testing.T, defs []hostDef) *cluster {
	t.Helper()
	dir := t.TempDir()
	r := redistest.Start(t, redistest.Options{})
	creds, err := bus.OpenCreds(filepath.Join(dir, "creds"))
	if err != nil {
		t.Fatal(err)
	}
	nats := testkit.BusServer(t, bus.EmbeddedOptions{Creds: creds, Platform: "p1", NodeConnPrefix: bus.NodeConnPrefix})
	topo, err := yaml.Marshal(testConfig(1000))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "topology.yaml"), topo, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, hosts: map[string]*host.Host{}, made: confSet{}}
	st := testkit.OpenStore(t, r.URL())
	c.store = st
	for _, d := range defs {
		text := fmt.Sprintf(`host: {name: %s, data_dir: %s, platform: p1, status_interval: 200ms}
infrastructure:
  bus:   {plugin: convene.bus.nats, url: %q, creds: %q}
  store: {plugin: convene.store.redis, url: %q}
servers:%s
topology: topology.yaml
`, d.name, filepath.Join(dir, d.name), nats.URL(), creds.Dir(), r.URL(), d.servers)
		path := filepath.Join(dir, d.name+".yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		h, err := host.Open(path, host.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Start(context.Background()); err != nil {
			t.Fatalf("host %s: %v", d.name, err)
		}
		c.hosts[d.name] = h
		c.order = append(c.order, d.name)
	}
	t.Cleanup(c.stop)
	c.client = c.apiOf(defs[len(defs)-1].name)
	return c
}

// apiOf is a client of the API host name runs.
func (c *cluster) apiOf(name string) *apiclient.Client {
	return apiclient.New(c.apiURL(name), token)
}

// apiURL is where the API host name runs listens.
func (c *cluster) apiURL(name string) string {
	c.t.Helper()
	v, ok := c.hosts[name].Instance("api")
	if !ok {
		c.t.Fatalf("host %s runs no API", name)
	}
	return "http://" + v.(*api.PluginServer).Server().Addr()
}

// get answers GET path of the API at base with the test's token: the
// status, and the error code of an error answer.
func get(t *testing.T, base, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Error.Code + ": " + body.Error.Message
}

// stop stops the hosts, last started first.
func (c *cluster) stop() {
	for _, name := range slices.Backward(c.order) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := c.hosts[name].Stop(ctx); err != nil {
			c.t.Logf("host %s: stop: %v", name, err)
		}
		cancel()
	}
}

// nodes are the simulated media nodes running on every host, by id, with
// the connection each runs on.
func (c *cluster) nodes() map[string]simNode {
	out := map[string]simNode{}
	for _, h := range c.hosts {
		v, ok := h.Instance("nodes")
		if !ok {
			continue
		}
		sim := v.(*medianode.SimServer)
		for i, n := range sim.Nodes() {
			out[n.ID()] = simNode{n, sim.Conn(i)}
		}
	}
	return out
}

type simNode struct {
	node *medianode.Node
	conn *bus.Bus
}

// kill crashes a simulated node: it stops and its connection closes, as
// when its process dies.
func (n simNode) kill() {
	n.node.Kill()
	n.conn.Close()
}

// hosted is what the running simulated nodes host, by node.
func (c *cluster) hosted() map[string][]string {
	out := map[string][]string{}
	for id, n := range c.nodes() {
		if !n.node.Running() {
			continue
		}
		for _, conf := range n.node.Conferences() {
			out[id] = append(out[id], conf.E164)
		}
	}
	return out
}

// create books a conference through the API, retrying while no scheduler
// is active yet (the deployment just started).
func (c *cluster) create(name string) apiclient.Conference {
	c.t.Helper()
	var conf apiclient.Conference
	var last error
	testkit.Eventually(c.t, testkit.Wait, testkit.Cond("a create of "+name, func() bool {
		conf, last = c.client.CreateConference(context.Background(), apiclient.CreateConferenceRequest{
			Name: name, Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 60})
		return last == nil || apiCode(last) != "SCHEDULER_UNAVAILABLE"
	}))
	if last != nil {
		c.t.Fatalf("create %s: %v", name, last)
	}
	c.mu.Lock()
	c.made.add(conf)
	c.mu.Unlock()
	return conf
}

// end ends a conference through the API.
func (c *cluster) end(e164 string) {
	c.t.Helper()
	if err := c.client.EndConference(context.Background(), e164); err != nil {
		c.t.Fatalf("end %s: %v", e164, err)
	}
	c.mu.Lock()
	delete(c.made, e164)
	c.mu.Unlock()
}

// exactly waits until exactly the conferences created and not ended run,
// each once on a live node with the licence counts to match, and the API
// lists exactly them.
func (c *cluster) exactly(what string) {
	c.t.Helper()
	c.mu.Lock()
	want := maps.Clone(c.made)
	c.mu.Unlock()
	testkit.Eventually(c.t, 20*time.Second, func() error {
		if last := c.problems(want); len(last) > 0 {
			return fmt.Errorf("%s: not the %d conferences created:\n  %s", what, len(want), strings.Join(last, "\n  "))
		}
		return nil
	})
}

func (c *cluster) problems(want confSet) []string {
	ctx := context.Background()
	stored, err := c.store.AllConferences(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	out := compareConferences(want, stored, c.hosted())
	out = append(out, licenceProblems(c.t, c.store, want, stored)...)
	listed, err := c.client.DomainConferences(ctx, "acme", apiclient.ListOptions{})
	if err != nil {
		return append(out, "the API lists nothing: "+err.Error())
	}
	var got, exp []string
	for _, l := range listed {
		got = append(got, l.E164)
	}
	for e := range want {
		exp = append(exp, e)
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		out = append(out, fmt.Sprintf("the API lists %v, want %v", got, exp))
	}
	return out
}

// nodesUp waits until RMS says n nodes are up, through the API.
func (c *cluster) nodesUp(n int) {
	c.t.Helper()
	testkit.Eventually(c.t, testkit.Wait, testkit.Cond(fmt.Sprintf("%d nodes up", n), func() bool {
		nodes, err := c.client.Nodes(context.Background())
		if err != nil {
			return false
		}
		up := 0
		for _, x := range nodes {
			if x.State == protocol.NodeUp {
				up++
			}
		}
		return up == n
	}))
}
