package console

import (
	"context"
	"time"

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
)

func init() {
	host.Register(host.Plugin{
		ID:     PluginID,
		Doc:    "the operator console: pages at / on the API's listener, logged in with an API token (GET /login, POST /v1/session)",
		Server: func() host.Server { return new(PluginServer) },
		Config: func() any { return NewPluginConfig() },
	})
}

// PluginConfig is a console server's section of a host file.
type PluginConfig struct {
	// APIURL is the API the console reads (http://host:port); empty: the
	// listener that serves the console, which is the API's.
	APIURL string `yaml:"api_url"`
	// SessionTTL is a session's longest life; IdleTimeout how long it
	// lives unused.
	SessionTTL  time.Duration `yaml:"session_ttl"`
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxSessions bounds the sessions kept.
	MaxSessions int `yaml:"max_sessions"`
	// PageSize is the rows of a paginated list.
	PageSize int `yaml:"page_size"`
	// RequestTimeout bounds each call to the API.
	RequestTimeout time.Duration `yaml:"request_timeout"`
}

// NewPluginConfig is the configuration with its defaults.
func NewPluginConfig() *PluginConfig {
	o := Options{}
	_ = o.defaults()
	return &PluginConfig{SessionTTL: o.SessionTTL, IdleTimeout: o.IdleTimeout, MaxSessions: o.MaxSessions,
		PageSize: o.PageSize, RequestTimeout: o.RequestTimeout}
}

// PluginServer runs the console in a host; its pages are served by the
// API of the same host.
type PluginServer struct {
	c *Console
}

// Provision builds the console and mounts its routes, open: each checks
// the console's own session.
func (p *PluginServer) Provision(ctx host.Context, cfg any) error {
	pc := cfg.(*PluginConfig)
	topo, err := config.FromTopology(ctx.Topology().File, ctx.Topology().Node)
	if err != nil {
		return err
	}
	p.c, err = New(Options{APIURL: pc.APIURL, SessionTTL: pc.SessionTTL, IdleTimeout: pc.IdleTimeout,
		MaxSessions: pc.MaxSessions, PageSize: pc.PageSize, RequestTimeout: pc.RequestTimeout},
		Deps{Tokens: topo.API.Tokens, Domains: topo.Domains, Log: ctx.Logger()})
	if err != nil {
		return err
	}
	for _, rt := range p.c.Routes() {
		if err := ctx.Mount(host.Route{Pattern: rt.Pattern, Handler: rt.Handler, Open: true}); err != nil {
			return err
		}
	}
	return nil
}

// Start has nothing to start: the API serves the routes.
func (p *PluginServer) Start(context.Context) error { return nil }

// Stop ends the sessions and the event streams being relayed.
func (p *PluginServer) Stop(context.Context) error {
	p.c.Close()
	return nil
}

// Console is the running console.
func (p *PluginServer) Console() *Console { return p.c }
