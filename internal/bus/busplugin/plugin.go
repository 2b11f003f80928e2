// Package busplugin registers the bus with the host framework: plugin
// convene.bus.nats, an infrastructure server whose resource connects the
// host's servers to NATS, embedded in the process or external.
//
// It is a package of its own because the host framework imports
// internal/bus (for its transport adapter): the plugin, which imports the
// framework, cannot live in internal/bus.
package busplugin

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
)

// ID is the plugin's ID.
const ID = "convene.bus.nats"

func init() {
	host.Register(host.Plugin{
		ID:     ID,
		Doc:    "the NATS bus: a server embedded in the host, or an external one; resource: connections by role",
		Server: func() host.Server { return new(Server) },
		Config: func() any { return NewConfig() },
	})
}

// Config is the bus entry of a host file. With url, the host connects to
// that NATS server; without, it runs one itself (embedded).
type Config struct {
	// URL of an external NATS server (nats://host:4222); empty embeds one.
	URL string `yaml:"url"`
	// Creds, with url: this host's credential, one creds file for every
	// role or a directory of <role>.creds files (convene nats-config
	// makes them).
	Creds string `yaml:"creds"`
	// TLS files to an external server and to other platforms' buses.
	TLS TLS `yaml:"tls"`
	// PeerCreds are credential files, by platform moid, for other
	// platforms' buses; default this host's own platform credential.
	PeerCreds map[string]string `yaml:"peer_creds"`
	// Embedded configures the server the host runs when there is no url.
	Embedded Embedded `yaml:"embedded"`
}

// TLS are PEM files.
type TLS struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Embedded configures the embedded server.
type Embedded struct {
	// Listen is where media nodes and other processes reach it; "none":
	// in-process only. Default 127.0.0.1:4222.
	Listen string `yaml:"listen"`
	// Creds is the directory of its role credentials, made once and
	// reused; default <data_dir>/creds.
	Creds string `yaml:"creds"`
	// InMemory keeps the credentials in this process's memory only: no
	// other process can join the bus.
	InMemory bool `yaml:"in_memory"`
	// OverTCP connects the host's servers over loopback TCP rather than
	// in-process, so that the server can restart under them.
	OverTCP bool `yaml:"over_tcp"`
}

// NewConfig is the configuration with its defaults: the one place they
// live.
func NewConfig() *Config {
	return &Config{Embedded: Embedded{Listen: "127.0.0.1:4222"}}
}

// Resource is what the bus entry provides: connections to the bus by
// role (bus.Provider), and the host's own transport for management and
// distributed channels (host.TransportProvider).
type Resource struct {
	*bus.Provider
}

// Transport opens the host's connection, with the host role.
func (r Resource) Transport(name string) (host.Transport, error) {
	b, err := r.Connect(bus.RoleHost, name)
	if err != nil {
		return nil, err
	}
	return host.OwnBusTransport(b), nil
}

// Server runs the bus entry.
type Server struct {
	opts bus.ProviderOptions
	name string
	ctx  host.Context
	p    *bus.Provider
}

// Provision reads the configuration.
func (s *Server) Provision(ctx host.Context, cfg any) error {
	c := cfg.(*Config)
	if c.URL != "" && !reflect.DeepEqual(c.Embedded, NewConfig().Embedded) {
		return errors.New("embedded: is for the bus the host runs itself, and url names an external one: remove one of them")
	}
	topo, err := config.FromTopology(ctx.Topology().File, ctx.Topology().Node)
	if err != nil {
		return err
	}
	s.ctx, s.name = ctx, ctx.Name()
	s.opts = bus.ProviderOptions{
		URL: c.URL, Creds: c.Creds, PeerCreds: c.PeerCreds,
		TLS:      bus.TLSFiles{CAFile: c.TLS.CA, CertFile: c.TLS.Cert, KeyFile: c.TLS.Key},
		Platform: topo.Platform,
		Log:      ctx.Logger(),
	}
	if c.URL == "" {
		s.opts.Listen, s.opts.OverTCP = c.Embedded.Listen, c.Embedded.OverTCP
		if !c.Embedded.InMemory {
			s.opts.CredsDir = c.Embedded.Creds
			if s.opts.CredsDir == "" {
				s.opts.CredsDir = filepath.Join(ctx.DataDir(), "creds")
			}
		} else if c.Embedded.Creds != "" {
			return errors.New("embedded.creds and embedded.in_memory: the credentials are kept in a directory or in memory, not both; remove one")
		}
	}
	return nil
}

// Start starts the embedded server, or checks the external bus's
// credentials.
func (s *Server) Start(context.Context) error {
	p, err := bus.NewProvider(s.opts)
	if err != nil {
		return err
	}
	s.p = p
	where := bus.RedactURL(p.URL())
	if where == "" {
		where = "in-process only"
	}
	s.ctx.Logger().Info("bus ready", "embedded", !p.External(), "url", where)
	return nil
}

// Stop shuts the embedded server down.
func (s *Server) Stop(context.Context) error {
	if s.p != nil {
		s.p.Close()
	}
	return nil
}

// Resource is the bus.
func (s *Server) Resource() any { return Resource{s.p} }

// Provider is the running bus (nil before Start).
func (s *Server) Provider() *bus.Provider { return s.p }
