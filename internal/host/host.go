package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/convene/convene/internal/logkeep"
)

// Options say how to run a host.
type Options struct {
	Log *slog.Logger
	// Metrics is where instances register their metrics; default a
	// registry of the host's own (Host.Metrics).
	Metrics prometheus.Registerer
}

// Host runs the servers of one host file (seed 004: one process, one
// host). Start starts them; StopPlugin and StartPlugin stop and start one
// plugin's instances while the rest runs; Stop stops everything.
//
// Lock order: ops (one lifecycle operation at a time: Start, Stop,
// StopPlugin, StartPlugin), then mu (the state below), then a route
// table's or a channel's lock. Plugin code is never called with mu held.
type Host struct {
	file    *File
	log     *slog.Logger
	metrics prometheus.Registerer
	gather  *prometheus.Registry // when the host made its own
	routes  *routeTable
	keep    *logkeep.Keeper // logs.go

	ops sync.Mutex

	mu         sync.RWMutex
	running    bool
	started    time.Time
	infra      []*slot
	servers    []*slot
	channels   map[string]hub
	transports map[string]Transport // by resource name
	stopped    map[string]bool      // plugins stopped by an operator, or that failed to start
	failed     map[string]error     // why a plugin failed to start
	mgmt       *management
	changed    chan struct{}
}

// Open reads a host file and makes its host (not started).
func Open(path string, o Options) (*Host, error) {
	f, err := Load(path)
	if err != nil {
		return nil, err
	}
	return New(f, o)
}

// New makes the host of a checked host file (not started).
func New(f *File, o Options) (*Host, error) { return newHost(plugins, f, o) }

func newHost(reg *registry, f *File, o Options) (*Host, error) {
	h := &Host{
		file: f, log: o.Log, metrics: o.Metrics, routes: newRouteTable(),
		channels: map[string]hub{}, transports: map[string]Transport{},
		stopped: map[string]bool{}, failed: map[string]error{}, changed: make(chan struct{}, 1),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.keep = logkeep.New(logkeep.Options{Node: f.Host.Name, Log: h.log})
	h.log = slog.New(h.keep.Handler(h.log.Handler()))
	if h.metrics == nil {
		h.gather = prometheus.NewRegistry()
		h.metrics = h.gather
	}
	h.registerKeptLogs()
	get := func(id, path string) (Plugin, error) {
		pl, ok := reg.get(id)
		if !ok {
			return Plugin{}, fmt.Errorf("host: %s: plugin %s is not registered in this binary", path, id)
		}
		return pl, nil
	}
	for _, s := range f.Infrastructure {
		pl, err := get(s.Plugin, s.Path)
		if err != nil {
			return nil, err
		}
		h.infra = append(h.infra, &slot{h: h, name: s.Name, plugin: s.Plugin, path: s.Path,
			node: s.node, config: pl.Config, make: func() any { return pl.Server() }, state: StateStopped})
	}
	for _, s := range f.Servers {
		pl, err := get(s.Plugin, s.Path)
		if err != nil {
			return nil, err
		}
		sv := &slot{h: h, name: s.Name, plugin: s.Plugin, path: s.Path, node: s.node,
			config: pl.Config, make: func() any { return pl.Server() }, deployment: s.Deployment.Type, state: StateStopped}
		for _, c := range s.Components {
			cp, err := get(c.Plugin, c.Path)
			if err != nil {
				return nil, err
			}
			info := cp.Components[c.Name]
			path := c.Path
			if c.node != nil {
				path += ".config"
			}
			sv.comps = append(sv.comps, &slot{h: h, name: c.Name, plugin: c.Plugin, path: path,
				node: c.node, config: info.Config, make: func() any { return info.New() }, parent: sv, state: StateStopped})
		}
		h.servers = append(h.servers, sv)
	}
	return h, nil
}

// Name is the host's name.
func (h *Host) Name() string { return h.file.Host.Name }

// File is the host file the host runs.
func (h *Host) File() *File { return h.file }

// Metrics is the registry instances register on when Options.Metrics was
// not given (nil otherwise).
func (h *Host) Metrics() *prometheus.Registry { return h.gather }

// Routes are the routes the host's instances mounted, gated.
func (h *Host) Routes() []Route { return h.routes.list() }

// Handler serves every mounted route (gated), for a host that serves them
// itself; a route no instance mounted answers 404 in the error envelope.
func (h *Host) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux := h.routes.mux.Load()
		if mux != nil {
			if _, pattern := mux.Handler(r); pattern != "" {
				mux.ServeHTTP(w, r)
				return
			}
		}
		writeError(w, CodeRouteGone, fmt.Sprintf("no route %s %s on host %s", r.Method, r.URL.Path, h.Name()))
	})
}

// Start provisions and validates every instance, then starts them:
// infrastructure first, in file order, then each server with its
// components. If any step fails, what was started is stopped, every
// instance made is cleaned up, and the error names the entry.
func (h *Host) Start(ctx context.Context) (err error) {
	h.ops.Lock()
	defer h.ops.Unlock()
	h.mu.RLock()
	running := h.running
	h.mu.RUnlock()
	if running {
		return fmt.Errorf("host %s: already running", h.Name())
	}
	defer func() {
		if err != nil {
			h.teardown(context.WithoutCancel(ctx))
		}
	}()
	h.mu.Lock()
	h.stopped, h.failed = map[string]bool{}, map[string]error{}
	h.mu.Unlock()
	for _, s := range h.infra {
		if err = h.provision(s); err != nil {
			return err
		}
		if err = h.start(ctx, s); err != nil {
			return err
		}
		h.keepLogsFrom(s)
	}
	if err = h.openChannels(); err != nil {
		return err
	}
	for _, s := range h.servers {
		if err = h.provisionServer(s); err != nil {
			return err
		}
	}
	h.routes.seal()
	for _, s := range h.servers {
		if err = h.startServer(ctx, s); err != nil {
			return err
		}
	}
	if err = h.startManagement(); err != nil {
		return err
	}
	h.mu.Lock()
	h.running, h.started = true, time.Now()
	h.mu.Unlock()
	h.log.Info("host started", "host", h.Name(), "servers", len(h.servers), "infrastructure", len(h.infra))
	h.notify()
	return nil
}

// Stop stops every server, last first, then the infrastructure.
func (h *Host) Stop(ctx context.Context) error {
	h.ops.Lock()
	defer h.ops.Unlock()
	h.mu.Lock()
	h.running = false
	h.mu.Unlock()
	return h.teardown(ctx)
}

func (h *Host) teardown(ctx context.Context) error {
	var errs []error
	h.stopManagement()
	for i := len(h.servers) - 1; i >= 0; i-- {
		errs = append(errs, h.stopServer(ctx, h.servers[i]))
	}
	h.mu.Lock()
	hubs, transports := h.channels, h.transports
	h.channels, h.transports = map[string]hub{}, map[string]Transport{}
	h.mu.Unlock()
	for _, hb := range hubs {
		hb.close()
	}
	for _, t := range transports {
		if c, ok := t.(interface{ Close() }); ok {
			c.Close()
		}
	}
	h.stopKeepingLogs(ctx)
	for i := len(h.infra) - 1; i >= 0; i-- {
		errs = append(errs, h.stop(ctx, h.infra[i]))
	}
	return errors.Join(errs...)
}

// openChannels makes the host's end of every channel; a distributed one
// needs its bus resource to carry messages.
func (h *Host) openChannels() error {
	for _, c := range h.file.Channels {
		var hb hub
		if c.Kind == Distributed {
			t, err := h.transport(string(c.Bus))
			if err != nil {
				return fmt.Errorf("host %s: %s.bus: %w", h.Name(), c.Path, err)
			}
			hb = newDistHub(c.Name, c.Subject, c.Queue, c.Capacity, t, h.log)
		} else {
			hb = newLocalHub(c.Name, c.Capacity)
		}
		h.mu.Lock()
		h.channels[c.Name] = hb
		h.mu.Unlock()
	}
	return nil
}

// transport is the host's Transport on a bus resource, opened once.
func (h *Host) transport(resource string) (Transport, error) {
	h.mu.RLock()
	t, ok := h.transports[resource]
	h.mu.RUnlock()
	if ok {
		return t, nil
	}
	v, err := h.resource(resource)
	if err != nil {
		return nil, err
	}
	if t, err = transportOf(v, "host-"+h.Name()); err != nil {
		return nil, fmt.Errorf("resource %q: %w", resource, err)
	}
	h.mu.Lock()
	h.transports[resource] = t
	h.mu.Unlock()
	return t, nil
}

// resource is what a running infrastructure entry provides.
func (h *Host) resource(name string) (any, error) {
	h.mu.RLock()
	var s *slot
	for _, x := range h.infra {
		if x.name == name {
			s = x
		}
	}
	var inst any
	if s != nil && s.state == StateRunning {
		inst = s.inst
	}
	h.mu.RUnlock()
	switch {
	case s == nil:
		return nil, fmt.Errorf("host %s: no infrastructure resource %q: declare it under infrastructure:", h.Name(), name)
	case inst == nil:
		return nil, fmt.Errorf("host %s: resource %q is not running (it starts before the servers, in file order)", h.Name(), name)
	}
	return inst.(Provider).Resource(), nil
}

// notify tells management the host's state changed.
func (h *Host) notify() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// slot is one entry of the host file (an infrastructure entry, a server,
// a component of a server) and its current instance, if any.
type slot struct {
	h          *Host
	name       string
	plugin     string
	path       string
	node       *yaml.Node
	config     func() any
	make       func() any
	parent     *slot   // a component's server
	comps      []*slot // a server's components
	deployment DeploymentType

	// guarded by h.mu
	state State
	err   error
	inst  any
	life  *life
	made  int // instances made so far
}

func (s *slot) label() string {
	if s.parent != nil {
		return s.parent.name + "/" + s.name
	}
	return s.name
}

// blocker is the stopped plugin that keeps s from serving ("" if none),
// and whether it stopped because it failed. Needs h.mu.
func (s *slot) blocker() (string, bool) {
	for x := s; x != nil; x = x.parent {
		if s.h.stopped[x.plugin] {
			return x.plugin, s.h.failed[x.plugin] != nil
		}
	}
	return "", false
}

func (h *Host) set(s *slot, st State, err error) {
	h.mu.Lock()
	s.state, s.err = st, err
	h.mu.Unlock()
	h.notify()
}

// provision makes a fresh instance of s from its configuration, then
// provisions and validates it; on failure the instance is cleaned up and
// s is failed.
func (h *Host) provision(s *slot) error {
	inst := s.make()
	l := newLife(h.metrics)
	h.mu.Lock()
	s.inst, s.life, s.err = inst, l, nil
	s.made++
	h.mu.Unlock()
	p := newProblems(h.file.Path)
	cfg := decodeConfig(s.config, s.node, s.path, p)
	err := p.err()
	if pv, ok := inst.(Provisioner); ok && err == nil {
		if err = pv.Provision(Context{Context: l.ctx, h: h, s: s, life: l}, cfg); err != nil {
			err = fmt.Errorf("host %s: %s (%s): provision: %w", h.Name(), s.path, s.plugin, err)
		}
	}
	if v, ok := inst.(Validator); ok && err == nil {
		if err = v.Validate(); err != nil {
			err = fmt.Errorf("host %s: %s (%s): invalid: %w", h.Name(), s.path, s.plugin, err)
		}
	}
	if err != nil {
		h.discard(s, err)
		return err
	}
	h.set(s, StateProvisioned, nil)
	return nil
}

// start starts s's provisioned instance (a component without Start just
// becomes running); on failure it is cleaned up and s is failed.
func (h *Host) start(ctx context.Context, s *slot) error {
	h.mu.RLock()
	inst := s.inst
	h.mu.RUnlock()
	var err error
	if r, ok := inst.(Runner); ok { // a Server is a Runner too
		err = r.Start(ctx)
	}
	if err != nil {
		err = fmt.Errorf("host %s: %s (%s): start: %w", h.Name(), s.path, s.plugin, err)
		h.discard(s, err)
		return err
	}
	h.set(s, StateRunning, nil)
	return nil
}

// stop stops s's instance if it has one (running or only provisioned)
// and cleans it up. A failed Stop leaves s failed with its error.
func (h *Host) stop(ctx context.Context, s *slot) error {
	err := h.halt(ctx, s)
	return errors.Join(err, h.discard(s, err))
}

// halt ends s's subscriptions and context and calls its Stop if it runs;
// the instance stays for discard.
func (h *Host) halt(ctx context.Context, s *slot) error {
	h.mu.Lock()
	inst, l, st := s.inst, s.life, s.state
	if inst == nil || st == StateStopping {
		h.mu.Unlock()
		return nil
	}
	s.state = StateStopping
	h.mu.Unlock()
	h.notify()
	l.stopping()
	if r, ok := inst.(Runner); ok && st == StateRunning {
		if err := r.Stop(ctx); err != nil {
			return fmt.Errorf("host %s: %s (%s): stop: %w", h.Name(), s.path, s.plugin, err)
		}
	}
	return nil
}

// discard cleans up s's instance and leaves s stopped, or failed with
// cause. It returns Cleanup's error.
func (h *Host) discard(s *slot, cause error) error {
	h.mu.Lock()
	inst, l := s.inst, s.life
	s.inst, s.life = nil, nil
	h.mu.Unlock()
	if inst == nil {
		return nil // discarded already: its state and error stay
	}
	var err error
	if c, ok := inst.(CleanerUpper); ok {
		if err = c.Cleanup(); err != nil {
			err = fmt.Errorf("host %s: %s (%s): cleanup: %w", h.Name(), s.path, s.plugin, err)
		}
	}
	if l != nil {
		l.end(h.routes)
	}
	st, why := StateStopped, cause
	if why == nil {
		why = err
	}
	if why != nil {
		st = StateFailed
	}
	h.set(s, st, why)
	return err
}
