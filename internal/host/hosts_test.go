package host

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A pipeline in one host over local channels: each stage passes messages
// on in order; stopping a stage holds them in its channel, and its fresh
// instance carries on with nothing lost.
func TestLocalPipeline(t *testing.T) {
	h := startHost(t, `
host: {name: pipe}
servers:
  stream:  {plugin: toy.server, out: parse}
  parse:   {plugin: toy.hub, in: parse, out: process}
  process: {plugin: toy.server, in: process}
channels:
  parse:   {deployment: {type: local}, capacity: 8}
  process: {}
`)
	ctx := context.Background()
	out := stageOf("pipe", "stream").out
	send := func(from, to int) {
		for i := from; i < to; i++ {
			if err := out.Send(ctx, msg(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := func(n int) {
		t.Helper()
		eventually(t, "the last stage took "+strconv.Itoa(n), func() bool { return len(sinkOf("pipe", "process")) >= n })
		got := sinkOf("pipe", "process")
		if len(got) != n {
			t.Fatalf("took %d, want %d", len(got), n)
		}
		for i, m := range got {
			if string(m.Body) != strconv.Itoa(i)+"+parse" {
				t.Fatalf("message %d is %q", i, m.Body)
			}
		}
	}
	send(0, 20)
	want(20)
	if err := h.StopPlugin(ctx, "toy.hub"); err != nil {
		t.Fatal(err)
	}
	send(20, 25) // held in the parse channel meanwhile
	if q := h.Status(ctx).Channels[0]; q.Name != "parse" || q.Queued != 5 || q.Receivers != 0 {
		t.Fatalf("parse channel while its stage is stopped: %+v", q)
	}
	if err := h.StartPlugin(ctx, "toy.hub"); err != nil {
		t.Fatal(err)
	}
	send(25, 30)
	want(30)
}

func twoHostFile(name, platform, busName, servers string) string {
	return `
host: {name: ` + name + `, platform: ` + platform + `, status_interval: 100ms}
infrastructure:
  bus: {plugin: toy.bus, server: "` + busName + `"}
servers:
` + servers + `
channels:
  work: {deployment: {type: distributed}, subject: channel.pipe.` + platform + `, capacity: 4}
`
}

// A distributed channel joins stages on different hosts; the hosts
// running the same stage share its load; stopping the stage on one host
// sends everything to the other, and starting it again shares again.
func TestDistributedPipeline(t *testing.T) {
	busName, _ := testBus(t)
	startHost(t, twoHostFile("dpa", "dp", busName, "  source: {plugin: toy.server, out: work}"))
	hb := startHost(t, twoHostFile("dpb", "dp", busName, "  sink: {plugin: toy.hub, in: work}"))
	startHost(t, twoHostFile("dpc", "dp", busName, "  sink: {plugin: toy.hub, in: work}"))
	ctx := context.Background()
	out := stageOf("dpa", "source").out
	sent := 0
	send := func(n int) {
		for range n {
			if err := out.Send(ctx, msg(sent)); err != nil {
				t.Fatalf("message %d: %v", sent, err)
			}
			sent++
		}
	}
	taken := func() []int {
		var all []int
		for _, host := range []string{"dpb", "dpc"} {
			for _, m := range sinkOf(host, "sink") {
				all = append(all, num(t, m))
			}
		}
		slices.Sort(all)
		return all
	}
	check := func() {
		t.Helper()
		eventually(t, "every message taken", func() bool { return len(taken()) >= sent })
		for i, v := range taken() {
			if v != i {
				t.Fatalf("message %d lost or doubled", i)
			}
		}
	}
	send(100)
	check()
	b, c := len(sinkOf("dpb", "sink")), len(sinkOf("dpc", "sink"))
	if b == 0 || c == 0 {
		t.Fatalf("one host took everything: b %d, c %d", b, c)
	}
	if err := hb.StopPlugin(ctx, "toy.hub"); err != nil {
		t.Fatal(err)
	}
	send(30)
	check()
	if n := len(sinkOf("dpb", "sink")); n != b {
		t.Fatalf("the stopped stage took %d more", n-b)
	}
	if err := hb.StartPlugin(ctx, "toy.hub"); err != nil {
		t.Fatal(err)
	}
	send(100)
	check()
	if n := len(sinkOf("dpb", "sink")); n == b {
		t.Fatal("the restarted stage takes nothing")
	}
}

// Hosts publish their status and take control requests over the bus.
func TestManagement(t *testing.T) {
	busName, e := testBus(t)
	h1 := startHost(t, twoHostFile("m1", "mp", busName, "  web: {plugin: toy.server, route: \"GET /m1\"}\n  hub: {plugin: toy.hub, components: [greeter]}"))
	h2 := startHost(t, twoHostFile("m2", "mp", busName, "  hub: {plugin: toy.hub, components: [greeter]}"))
	ctx := context.Background()
	tr := NewBusTransport(connect(t, e, "cli"))
	col, err := NewCollector(tr, "mp")
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	names := func() []string {
		var out []string
		for _, s := range col.Hosts() {
			out = append(out, s.Host)
		}
		return out
	}
	eventually(t, "both hosts seen", func() bool { return slices.Equal(names(), []string{"m1", "m2"}) })

	cl := NewClient(tr, "mp")
	st, err := cl.StopPlugin(ctx, "m2", "toy.parts")
	if err != nil {
		t.Fatal(err)
	}
	if p := pluginState(st, "toy.parts"); st.Host != "m2" || p.State != StateStopped {
		t.Fatalf("m2 after stop: %+v", st.Plugins)
	}
	if p := pluginState(h1.Status(ctx), "toy.parts"); p.State != StateRunning {
		t.Fatalf("m1's toy.parts = %+v", p)
	}
	if p := pluginState(h2.Status(ctx), "toy.parts"); p.State != StateStopped {
		t.Fatalf("m2's toy.parts = %+v", p)
	}
	eventually(t, "the collector sees m2's plugin stopped", func() bool {
		for _, s := range col.Hosts() {
			if s.Host == "m2" {
				return pluginState(s, "toy.parts").State == StateStopped
			}
		}
		return false
	})
	if _, err := cl.StartPlugin(ctx, "m2", "toy.parts"); err != nil {
		t.Fatal(err)
	}
	_, err = cl.StopPlugin(ctx, "m2", "toy.nope")
	var ce *ControlError
	if !errors.Is(err, ErrUnknownPlugin) || !errors.As(err, &ce) || ce.Code != CodeUnknownPlugin || !strings.Contains(ce.Message, "runs no toy.nope") {
		t.Fatalf("unknown plugin: %v", err)
	}
	if _, err := cl.StopPlugin(ctx, "m2", "toy.bus"); err == nil || !strings.Contains(err.Error(), "infrastructure") {
		t.Fatalf("infrastructure plugin: %v", err)
	}
	if _, err := cl.Status(ctx, "nohost"); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("a host nobody runs: %v", err)
	}
	st, err = cl.Status(ctx, "m1")
	if err != nil || len(st.Servers) != 2 || st.Servers[1].Components[0].Name != "greeter" || st.Servers[0].Health != "ok" {
		t.Fatalf("m1 status: %+v, %v", st, err)
	}
	// The status is what GET /v1/hosts serves.
	data, err := json.Marshal(st)
	if err != nil || !strings.Contains(string(data), `{"id":"toy.parts","state":"running"}`) {
		t.Fatalf("JSON: %s %v", data, err)
	}

	wctx, cancel := context.WithTimeout(ctx, time.Second)
	all, err := cl.Hosts(wctx)
	cancel()
	if err != nil || len(all) != 2 {
		t.Fatalf("Hosts = %d hosts, %v", len(all), err)
	}

	if err := h2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the collector forgets a stopped host", func() bool { return slices.Equal(names(), []string{"m1"}) })
	// and keeps its last word apart: it stopped on purpose.
	if st := col.Stopped(); len(st) != 1 || st[0].Host != "m2" || st[0].Running {
		t.Fatalf("stopped hosts: %+v", st)
	}
}

// Health a server reports shows in the status.
func TestStatusHealth(t *testing.T) {
	h := startHost(t, `
host: {name: health}
servers:
  a: {plugin: toy.server, fail: health}
  b: {plugin: toy.server}
`)
	st := h.Status(context.Background())
	if st.Servers[0].Health != "unhealthy: toy failure" || st.Servers[1].Health != "ok" {
		t.Fatalf("health: %q, %q", st.Servers[0].Health, st.Servers[1].Health)
	}
	if !st.Running || st.Host != "health" || st.Servers[0].Instance != 1 {
		t.Fatalf("status %+v", st)
	}
	// What a management server gets through its Context.
	hc := stageOf("health", "b").hctx
	if got := hc.Manager().Status(context.Background()); got.Host != "health" || len(got.Servers) != 2 {
		t.Fatalf("Manager().Status() = %+v", got)
	}
	mfs, err := hc.Gatherer().Gather()
	found := false
	for _, m := range mfs {
		found = found || m.GetName() == "toy_requests_total"
	}
	if err != nil || !found {
		t.Fatalf("Gatherer() = %d families, %v", len(mfs), err)
	}
}

func TestRedact(t *testing.T) {
	got := redact("connect redis://user:s3cret@10.0.0.1:6379/0: refused")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "redis://user:xxxxx@10.0.0.1") {
		t.Fatalf("redact = %q", got)
	}
}

// A collector tells a host that said it stopped from one that went
// silent, and a status sent before the stop does not bring it back.
func TestCollectorKeepsTheLastWordOfAStoppedHost(t *testing.T) {
	c := &Collector{now: time.Now, hosts: map[string]seen{}, stopped: map[string]HostStatus{}}
	at := time.Now()
	send := func(running bool, at time.Time) {
		data, err := json.Marshal(StatusNtf{Type: TypeStatusNtf, Status: HostStatus{Host: "h", Running: running, At: at}})
		if err != nil {
			t.Fatal(err)
		}
		c.take(Delivery{Data: data})
	}
	state := func() (running, stopped int) { return len(c.Hosts()), len(c.Stopped()) }
	send(true, at)
	if r, s := state(); r != 1 || s != 0 {
		t.Fatalf("running: %d running, %d stopped", r, s)
	}
	send(false, at.Add(time.Second))
	if r, s := state(); r != 0 || s != 1 {
		t.Fatalf("after its stop: %d running, %d stopped", r, s)
	}
	send(true, at.Add(500*time.Millisecond)) // overtaken by the stop
	if r, s := state(); r != 0 || s != 1 {
		t.Fatalf("a status from before the stop: %d running, %d stopped", r, s)
	}
	send(true, at.Add(2*time.Second))
	if r, s := state(); r != 1 || s != 0 {
		t.Fatalf("running again: %d running, %d stopped", r, s)
	}
}
