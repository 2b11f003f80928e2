package alarms

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/store"
)

// PluginID is the alarm service's plugin.
const PluginID = "convene.alarms"

func init() {
	host.Register(host.Plugin{
		ID:     PluginID,
		Doc:    "process monitoring and alarms: watches hosts, plugins, nodes, rooms, platforms, licences, restores, the store and the bus; mounts /v1/alarms on the API",
		Server: func() host.Server { return new(PluginServer) },
		Config: func() any { return NewPluginConfig() },
	})
}

// PluginConfig is an alarm server's section of a host file.
type PluginConfig struct {
	// Bus and Store are the infrastructure entries it uses and watches.
	Bus   host.ResourceRef `yaml:"bus"`
	Store host.ResourceRef `yaml:"store"`
	// Records is the records database (convene.records.sql) where alarms
	// are kept; empty: in memory only (a restart forgets them).
	Records host.ResourceRef `yaml:"records"`
	// HostsBus is the bus on which the platform's hosts publish their
	// status; empty: only this host is watched.
	HostsBus host.ResourceRef `yaml:"hosts_bus"`
	// Interval is how often every check runs; CheckTimeout bounds each.
	Interval     time.Duration `yaml:"interval"`
	CheckTimeout time.Duration `yaml:"check_timeout"`
	// LicencePercent: a licence class used above it alarms.
	LicencePercent int `yaml:"licence_percent"`
	// RestoreAttempts: a conference whose restore failed so many times
	// alarms.
	RestoreAttempts int `yaml:"restore_attempts"`
	// WebhookURL is sent every new alarm (POST, JSON, Idempotency-Key:
	// the alarm's id); empty: none.
	WebhookURL string `yaml:"webhook_url"`
	// WebhookBackoff doubles up to WebhookMaxBackoff between tries.
	WebhookBackoff    time.Duration `yaml:"webhook_backoff"`
	WebhookMaxBackoff time.Duration `yaml:"webhook_max_backoff"`
	// History is how many alarms GET /v1/alarms?state=all lists at most.
	History int `yaml:"history"`
}

// NewPluginConfig is the configuration with its defaults: the service's.
func NewPluginConfig() *PluginConfig {
	o := Options{Platform: "defaults"}
	_ = o.defaults()
	return &PluginConfig{Bus: "bus", Store: "store", HostsBus: "bus", Interval: o.Interval, CheckTimeout: o.CheckTimeout,
		LicencePercent: o.LicencePercent, RestoreAttempts: o.RestoreAttempts, WebhookBackoff: o.WebhookBackoff,
		WebhookMaxBackoff: o.WebhookMaxBackoff, History: o.History}
}

// busConnector is what the service needs of the bus resource.
type busConnector interface {
	Connect(role bus.Role, name string) (*bus.Bus, error)
}

// PluginServer runs the alarm service in a host.
type PluginServer struct {
	svc     *Service
	hctx    host.Context
	t       host.Transport
	mu      sync.Mutex
	col     *host.Collector
	hostsOn bool
}

// Provision connects the service, makes it and mounts its routes.
func (s *PluginServer) Provision(ctx host.Context, cfg any) error {
	c := cfg.(*PluginConfig)
	topo, err := config.FromTopology(ctx.Topology().File, ctx.Topology().Node)
	if err != nil {
		return err
	}
	conn, err := host.ResourceOf[busConnector](ctx, c.Bus)
	if err != nil {
		return err
	}
	st, err := host.ResourceOf[*store.Store](ctx, c.Store)
	if err != nil {
		return err
	}
	var recs Records
	if c.Records != "" {
		db, err := host.ResourceOf[*records.DB](ctx, c.Records)
		if err != nil {
			return err
		}
		recs = db
	}
	s.hctx = ctx
	if c.HostsBus != "" {
		tp, err := host.ResourceOf[host.TransportProvider](ctx, c.HostsBus)
		if err != nil {
			return fmt.Errorf("hosts_bus: %w", err)
		}
		if s.t, err = tp.Transport("alarms-hosts-" + ctx.HostName()); err != nil {
			return fmt.Errorf("hosts_bus: %w", err)
		}
		if cl, ok := s.t.(interface{ Close() }); ok {
			ctx.OnCleanup(cl.Close)
		}
	}
	b, err := conn.Connect(bus.RoleAlarms, "alarms-"+ctx.HostName()+"-"+ctx.Name())
	if err != nil {
		return err
	}
	ctx.OnCleanup(b.Close)
	var domains []string
	for _, d := range topo.Domains {
		if d.Platform == "" || d.Platform == topo.Platform {
			domains = append(domains, d.Moid)
		}
	}
	s.svc, err = New(Options{
		Platform: topo.Platform, Interval: c.Interval, CheckTimeout: c.CheckTimeout, LicencePercent: c.LicencePercent,
		RestoreAttempts: c.RestoreAttempts, Domains: domains, WebhookURL: c.WebhookURL, WebhookBackoff: c.WebhookBackoff,
		WebhookMaxBackoff: c.WebhookMaxBackoff, History: c.History,
	}, Deps{Bus: b, Store: st, Records: recs, Hosts: s.hosts, Metrics: ctx.Metrics(), Log: ctx.Logger()})
	if err != nil {
		return err
	}
	for _, rt := range s.svc.Routes() {
		if err := ctx.Mount(host.Route{Pattern: rt.Pattern, Handler: rt.Handler, Scope: rt.Scope.String()}); err != nil {
			return err
		}
	}
	return nil
}

// Start follows the hosts' statuses and starts the service.
func (s *PluginServer) Start(ctx context.Context) error {
	if s.t != nil {
		col, err := host.NewCollector(s.t, s.hctx.Platform())
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.col = col
		s.mu.Unlock()
	}
	if err := s.svc.Start(ctx); err != nil {
		s.closeCollector()
		return err
	}
	return nil
}

// Stop stops the service, writing what it has not written yet.
func (s *PluginServer) Stop(ctx context.Context) error {
	err := s.svc.Shutdown(ctx)
	s.closeCollector()
	return err
}

func (s *PluginServer) closeCollector() {
	s.mu.Lock()
	col := s.col
	s.col = nil
	s.mu.Unlock()
	if col != nil {
		_ = col.Close()
	}
}

// hosts are the latest statuses of the platform's hosts: this host's own,
// asked now, and the others' as heard on the hosts' bus. While this host
// starts or stops, its plugins' states say nothing: no answer then.
func (s *PluginServer) hosts(ctx context.Context) ([]host.HostStatus, bool) {
	own := s.hctx.Manager().Status(ctx)
	if !own.Running {
		return nil, false
	}
	out := []host.HostStatus{own}
	s.mu.Lock()
	col := s.col
	s.mu.Unlock()
	if col == nil {
		return out, true
	}
	for _, st := range append(col.Hosts(), col.Stopped()...) {
		if st.Host != own.Host {
			out = append(out, st)
		}
	}
	return out, true
}

// Service is the running service.
func (s *PluginServer) Service() *Service { return s.svc }
