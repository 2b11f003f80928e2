package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convene/convene/internal/bus"
)

// Toy plugins: they record every lifecycle step in the journal, by host.

var journal = struct {
	sync.Mutex
	events    map[string][]string      // host → events
	instances map[string]int           // host/label → instances made
	sinks     map[string][]Message     // host/label → messages a stage took
	stages    map[string]*toyServer    // host/label → the latest instance
	buses     map[string]*bus.Embedded // name → a test's bus
	failNext  map[string]string        // host/label → the step to fail once
}{
	failNext: map[string]string{},
	events:   map[string][]string{}, instances: map[string]int{}, sinks: map[string][]Message{},
	stages: map[string]*toyServer{}, buses: map[string]*bus.Embedded{},
}

func record(host, ev string) {
	journal.Lock()
	journal.events[host] = append(journal.events[host], ev)
	journal.Unlock()
}

func eventsOf(host string) []string {
	journal.Lock()
	defer journal.Unlock()
	return append([]string(nil), journal.events[host]...)
}

func sinkOf(host, label string) []Message {
	journal.Lock()
	defer journal.Unlock()
	return append([]Message(nil), journal.sinks[host+"/"+label]...)
}

func stageOf(host, label string) *toyServer {
	journal.Lock()
	defer journal.Unlock()
	return journal.stages[host+"/"+label]
}

var errToy = errors.New("toy failure")

type toyConfig struct {
	Greeting string      `yaml:"greeting"`
	Route    string      `yaml:"route"`
	Fail     string      `yaml:"fail"`
	Count    int         `yaml:"count"`
	In       ChannelRef  `yaml:"in"`
	Out      ChannelRef  `yaml:"out"`
	Store    ResourceRef `yaml:"store"`
	Track    bool        `yaml:"track"`
}

func toyDefaults() any { return &toyConfig{Greeting: "hello"} }

// toyServer is a server that takes components, mounts a route, and moves
// messages from its in channel to its out channel.
type toyServer struct {
	host, label string
	n           int
	cfg         *toyConfig
	ctx         context.Context
	hctx        Context
	in, out     Channel
	wg          sync.WaitGroup

	mu    sync.Mutex
	comps map[string]Component
}

func (s *toyServer) step(name string) error {
	record(s.host, fmt.Sprintf("%s#%d %s", s.label, s.n, name))
	journal.Lock()
	once := journal.failNext[s.host+"/"+s.label] == name
	if once {
		delete(journal.failNext, s.host+"/"+s.label)
	}
	journal.Unlock()
	if once || (s.cfg != nil && s.cfg.Fail == name) {
		return fmt.Errorf("%s: %w", name, errToy)
	}
	return nil
}

func (s *toyServer) Provision(ctx Context, cfg any) error {
	s.host, s.label, s.cfg, s.ctx, s.hctx = ctx.HostName(), ctx.Name(), cfg.(*toyConfig), ctx, ctx
	s.comps = map[string]Component{}
	journal.Lock()
	journal.instances[s.host+"/"+s.label]++
	s.n = journal.instances[s.host+"/"+s.label]
	journal.stages[s.host+"/"+s.label] = s
	journal.Unlock()
	if err := s.step("provision"); err != nil {
		return err
	}
	requests := prometheus.NewCounter(prometheus.CounterOpts{Name: "toy_requests_total", Help: "toy", ConstLabels: prometheus.Labels{"server": s.label}})
	ctx.Metrics().MustRegister(requests) // twice without the host's unregistering: a panic
	if s.cfg.Route != "" {
		if err := ctx.Mount(Route{Pattern: s.cfg.Route, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Inc()
			s.mu.Lock()
			names := keysOf(s.comps)
			s.mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"server": s.label, "instance": s.n, "greeting": s.cfg.Greeting, "components": names})
		})}); err != nil {
			return err
		}
	}
	if s.cfg.Store != "" {
		if _, err := ResourceOf[*toyStore](ctx, s.cfg.Store); err != nil {
			return err
		}
	}
	var err error
	if s.cfg.In != "" {
		if s.in, err = ctx.Channel(s.cfg.In); err != nil {
			return err
		}
	}
	if s.cfg.Out != "" {
		if s.out, err = ctx.Channel(s.cfg.Out); err != nil {
			return err
		}
	}
	if s.cfg.Track {
		ctx.Track(toySub{s})
	}
	return nil
}

func (s *toyServer) Validate() error { return s.step("validate") }

func (s *toyServer) Start(context.Context) error {
	if err := s.step("start"); err != nil {
		return err
	}
	if s.in != nil {
		s.wg.Add(1)
		go s.loop()
	}
	return nil
}

// loop takes messages from in, keeps them, and passes them on to out.
func (s *toyServer) loop() {
	defer s.wg.Done()
	for {
		m, err := s.in.Receive(s.ctx)
		if err != nil {
			return
		}
		journal.Lock()
		journal.sinks[s.host+"/"+s.label] = append(journal.sinks[s.host+"/"+s.label], m)
		journal.Unlock()
		if s.out != nil {
			m.Body = append(m.Body, []byte("+"+s.label)...)
			if err := s.out.Send(s.ctx, m); err != nil {
				return
			}
		}
	}
}

func (s *toyServer) Stop(context.Context) error {
	s.wg.Wait()
	return s.step("stop")
}

func (s *toyServer) Cleanup() error { return s.step("cleanup") }

func (s *toyServer) Load(name string, c Component) error {
	if err := s.step("load " + name); err != nil {
		return err
	}
	s.mu.Lock()
	s.comps[name] = c
	s.mu.Unlock()
	return nil
}

func (s *toyServer) Unload(name string) {
	_ = s.step("unload " + name)
	s.mu.Lock()
	delete(s.comps, name)
	s.mu.Unlock()
}

func (s *toyServer) Health(context.Context) error {
	if s.cfg.Fail == "health" {
		return errToy
	}
	return nil
}

func (s *toyServer) components() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return keysOf(s.comps)
}

// toySub is a subscription the host must end before the server stops.
type toySub struct{ s *toyServer }

func (u toySub) Unsubscribe() error {
	record(u.s.host, fmt.Sprintf("%s#%d unsubscribe", u.s.label, u.s.n))
	return nil
}

type greeterConfig struct {
	Route string `yaml:"route"`
	Word  string `yaml:"word"`
	Fail  string `yaml:"fail"`
}

// toyGreeter is a component that mounts a route.
type toyGreeter struct{ toyServer }

func (g *toyGreeter) Provision(ctx Context, cfg any) error {
	c := cfg.(*greeterConfig)
	g.host, g.label, g.cfg = ctx.HostName(), ctx.Name(), &toyConfig{Fail: c.Fail}
	journal.Lock()
	journal.instances[g.host+"/"+g.label]++
	g.n = journal.instances[g.host+"/"+g.label]
	journal.Unlock()
	if err := g.step("provision"); err != nil {
		return err
	}
	if c.Route == "" {
		return nil
	}
	return ctx.Mount(Route{Pattern: c.Route, Scope: "conference", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"component": g.label, "instance": g.n, "word": c.Word})
	})})
}

func (g *toyGreeter) Start(context.Context) error { return g.step("start") }
func (g *toyGreeter) Stop(context.Context) error  { return g.step("stop") }

type storeConfig struct {
	Uses ResourceRef `yaml:"uses"`
}

// toyStore is an infrastructure resource.
type toyStore struct{ toyServer }

func (s *toyStore) Provision(ctx Context, cfg any) error {
	s.host, s.label, s.cfg = ctx.HostName(), ctx.Name(), &toyConfig{}
	s.n = 1
	return s.step("provision")
}
func (s *toyStore) Start(context.Context) error { return s.step("start") }
func (s *toyStore) Stop(context.Context) error  { return s.step("stop") }
func (s *toyStore) Resource() any               { return s }

type toyBusConfig struct {
	Server string `yaml:"server"`
}

// toyBus provides a test's embedded bus as a TransportProvider.
type toyBus struct {
	e    *bus.Embedded
	name string
}

func (b *toyBus) Provision(_ Context, cfg any) error {
	c := cfg.(*toyBusConfig)
	journal.Lock()
	b.e = journal.buses[c.Server]
	journal.Unlock()
	if b.e == nil {
		return fmt.Errorf("no test bus %q", c.Server)
	}
	return nil
}
func (b *toyBus) Start(context.Context) error { return nil }
func (b *toyBus) Stop(context.Context) error  { return nil }
func (b *toyBus) Resource() any               { return b }
func (b *toyBus) Transport(name string) (Transport, error) {
	c, err := bus.Connect(bus.Options{Embedded: b.e, Role: bus.RoleInternal, Name: name}, nil)
	if err != nil {
		return nil, err
	}
	return OwnBusTransport(c), nil
}

// toyPlain is a server that takes neither configuration nor components.
type toyPlain struct{}

func (toyPlain) Start(context.Context) error { return nil }
func (toyPlain) Stop(context.Context) error  { return nil }

func init() {
	Register(Plugin{ID: "toy.server", Doc: "a toy server", Server: func() Server { return new(toyServer) }, Config: toyDefaults})
	Register(Plugin{ID: "toy.hub", Doc: "another toy server", Server: func() Server { return new(toyServer) }, Config: toyDefaults})
	Register(Plugin{ID: "toy.parts", Doc: "toy components", Components: map[string]ComponentInfo{
		"greeter": {New: func() Component { return new(toyGreeter) }, Config: func() any { return &greeterConfig{Word: "hi"} }},
		"counter": {New: func() Component { return new(int) }},
	}})
	Register(Plugin{ID: "toy.store", Server: func() Server { return new(toyStore) }, Config: func() any { return new(storeConfig) }})
	Register(Plugin{ID: "toy.bus", Server: func() Server { return new(toyBus) }, Config: func() any { return new(toyBusConfig) }})
	Register(Plugin{ID: "toy.plain", Server: func() Server { return toyPlain{} }})
}

// testBus starts an embedded bus the toy.bus plugin finds by name.
func testBus(t *testing.T) (string, *bus.Embedded) {
	t.Helper()
	e, err := bus.StartEmbedded(bus.EmbeddedOptions{NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	name := t.Name()
	journal.Lock()
	journal.buses[name] = e
	journal.Unlock()
	return name, e
}

// connect opens an in-process connection to e with the internal role.
func connect(t *testing.T, e *bus.Embedded, name string) *bus.Bus {
	t.Helper()
	b, err := bus.Connect(bus.Options{Embedded: e, Role: bus.RoleInternal, Name: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// startHost parses text as a host file and starts it; it stops with the
// test.
func startHost(t *testing.T, text string) *Host {
	t.Helper()
	f, err := Parse(t.Name()+".yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	forget(f.Host.Name)
	h, err := New(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Stop(context.Background()) })
	return h
}

// eventually polls cond until it holds, failing the test at the deadline.
// The host's own tests cannot use the shared testkit, which is built on
// the host.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// forget clears what the journal holds of a host, so that a test run
// again (-count) starts from nothing.
func forget(host string) {
	journal.Lock()
	defer journal.Unlock()
	delete(journal.events, host)
	for _, m := range []map[string]int{journal.instances} {
		for k := range m {
			if strings.HasPrefix(k, host+"/") {
				delete(m, k)
			}
		}
	}
	for k := range journal.sinks {
		if strings.HasPrefix(k, host+"/") {
			delete(journal.sinks, k)
		}
	}
	for k := range journal.stages {
		if strings.HasPrefix(k, host+"/") {
			delete(journal.stages, k)
		}
	}
}
