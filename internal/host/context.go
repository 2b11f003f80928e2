package host

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Context is what the host hands an instance at Provision: what the host
// owns (resources, channels, the HTTP routes, the topology), a logger and
// a metrics registerer of its own, and ways to leave nothing behind when
// it stops. Its context.Context is cancelled when the instance is asked to
// stop, just before its Stop is called: goroutines started with it end.
type Context struct {
	context.Context
	h    *Host
	s    *slot
	life *life
}

// HostName is the name of the host the instance runs on.
func (c Context) HostName() string { return c.h.file.Host.Name }

// Platform is the host's platform (host.platform).
func (c Context) Platform() string { return c.h.file.Host.Platform }

// DataDir is the host's data directory (host.data_dir).
func (c Context) DataDir() string { return c.h.file.Host.DataDir }

// Name is the instance's name in the host file: the server's (or the
// infrastructure entry's) name, or "<server>/<component>".
func (c Context) Name() string { return c.s.label() }

// Plugin is the ID of the instance's plugin.
func (c Context) Plugin() string { return c.s.plugin }

// Deployment is the server's deployment.type ("" when the file says none;
// for a component, its server's).
func (c Context) Deployment() DeploymentType {
	if c.s.parent != nil {
		return c.s.parent.deployment
	}
	return c.s.deployment
}

// Logger is the host's logger with the host, instance and plugin named.
func (c Context) Logger() *slog.Logger {
	return c.h.log.With("host", c.HostName(), "instance", c.Name(), "plugin", c.s.plugin)
}

// Metrics registers the instance's metrics on the host's registry; they
// are unregistered when it stops, so that a fresh instance can register
// them again.
func (c Context) Metrics() prometheus.Registerer { return c.life.metrics }

// Gatherer gathers the host's metrics, for the server that serves
// /metrics: the registry given in Options.Metrics when it can gather,
// else the host's own; nil when neither can.
func (c Context) Gatherer() prometheus.Gatherer {
	if c.h.gather != nil {
		return c.h.gather
	}
	g, _ := c.h.metrics.(prometheus.Gatherer)
	return g
}

// Manager is what a management server (the API) may do with its host.
// A handler must not stop the plugin that serves it and wait: that
// plugin's Stop waits for the handler.
type Manager interface {
	Status(ctx context.Context) HostStatus
	StopPlugin(ctx context.Context, plugin string) error
	StartPlugin(ctx context.Context, plugin string) error
}

// Manager is the instance's host, to report on and manage.
func (c Context) Manager() Manager { return c.h }

// Topology is the host file's topology: node, for whoever reads it.
func (c Context) Topology() Topology { return c.h.file.Topology }

// Resource is what the infrastructure entry name provides.
func (c Context) Resource(name ResourceRef) (any, error) { return c.h.resource(string(name)) }

// ResourceOf is Resource as type T.
func ResourceOf[T any](c Context, name ResourceRef) (T, error) {
	var zero T
	v, err := c.Resource(name)
	if err != nil {
		return zero, err
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("host: resource %q is a %T, not a %T: name another resource", name, v, zero)
	}
	return t, nil
}

// Channel is the instance's endpoint of the channel name.
func (c Context) Channel(name ChannelRef) (Channel, error) {
	c.h.mu.RLock()
	hb, ok := c.h.channels[string(name)]
	c.h.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("host: %s: no channel %q on host %s: declare it under channels:", c.s.path, name, c.HostName())
	}
	e := newEndpoint(hb)
	c.life.add(func(l *life) { l.endpoints = append(l.endpoints, e) })
	return e, nil
}

// Mount adds HTTP routes the host's HTTP server (the API) serves while
// this instance runs, gated by its plugin's state. Mount them in
// Provision: the API reads the routes when it starts.
func (c Context) Mount(routes ...Route) error {
	for _, rt := range routes {
		if err := c.h.routes.mount(c.h, c.s, c.life, rt); err != nil {
			return err
		}
	}
	return nil
}

// Routes are the routes every instance of the host mounted, each with its
// gated handler: what an HTTP server plugin serves (read them in Start).
func (c Context) Routes() []Route { return c.h.routes.list() }

// Track hands the host a subscription the instance made: the host ends it
// before it calls the instance's Stop, so that no new work arrives while
// it stops (ending it in Stop as well does no harm).
func (c Context) Track(u Unsubscriber) {
	c.life.add(func(l *life) { l.subs = append(l.subs, u) })
}

// OnCleanup runs f after the instance's Cleanup (last added, first run):
// to close what Provision opened, such as bus connections.
func (c Context) OnCleanup(f func()) {
	c.life.add(func(l *life) { l.cleanups = append(l.cleanups, f) })
}

// life is what one instance took through its Context.
type life struct {
	ctx     context.Context
	cancel  context.CancelFunc
	metrics *trackedRegisterer

	mu        sync.Mutex
	subs      []Unsubscriber
	cleanups  []func()
	endpoints []*endpoint
	routes    []*routeEntry // guarded by the route table's lock
}

func newLife(reg prometheus.Registerer) *life {
	ctx, cancel := context.WithCancel(context.Background())
	return &life{ctx: ctx, cancel: cancel, metrics: &trackedRegisterer{inner: reg}}
}

func (l *life) add(f func(*life)) {
	l.mu.Lock()
	f(l)
	l.mu.Unlock()
}

// stopping ends the subscriptions the instance handed over and cancels
// its context: no new work arrives, its goroutines are told to end.
func (l *life) stopping() {
	l.unsubscribe()
	l.cancel()
}

func (l *life) unsubscribe() {
	l.mu.Lock()
	subs := l.subs
	l.subs = nil
	l.mu.Unlock()
	for _, u := range subs {
		_ = u.Unsubscribe()
	}
}

// end releases everything else, after the instance's Cleanup.
func (l *life) end(t *routeTable) {
	l.stopping()
	l.mu.Lock()
	eps, cleanups := l.endpoints, l.cleanups
	l.endpoints, l.cleanups = nil, nil
	l.mu.Unlock()
	for _, e := range eps {
		e.close()
	}
	t.mu.Lock()
	for _, e := range l.routes {
		e.handler.Store(nil)
	}
	l.routes = nil
	t.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	l.metrics.unregisterAll()
}
