package registry

import (
	"context"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
)

// PluginID is the registry's plugin.
const PluginID = "convene.registry"

func init() {
	host.Register(host.Plugin{
		ID:     PluginID,
		Doc:    "the registry (UPU): which node runs each conference number",
		Server: func() host.Server { return new(PluginServer) },
		Config: func() any { return NewPluginConfig() },
	})
}

// PluginConfig is a registry server's section of a host file.
type PluginConfig struct {
	// Bus is the infrastructure entry the registry connects through.
	Bus host.ResourceRef `yaml:"bus"`
}

// NewPluginConfig is the configuration with its defaults.
func NewPluginConfig() *PluginConfig { return &PluginConfig{Bus: "bus"} }

// busConnector is what the registry needs of the bus resource.
type busConnector interface {
	Connect(role bus.Role, name string) (*bus.Bus, error)
}

// PluginServer runs the registry in a host.
type PluginServer struct {
	svc *Service
}

// Provision connects the registry to the bus and makes it.
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
	b, err := conn.Connect(bus.RoleRegistry, "registry-"+topo.Platform)
	if err != nil {
		return err
	}
	ctx.OnCleanup(b.Close)
	s.svc, err = New(Options{Platform: topo.Platform}, b, ctx.Logger())
	return err
}

// Start starts the registry.
func (s *PluginServer) Start(ctx context.Context) error { return s.svc.Start(ctx) }

// Stop shuts the registry down.
func (s *PluginServer) Stop(ctx context.Context) error { return s.svc.Shutdown(ctx) }

// Service is the running registry.
func (s *PluginServer) Service() *Service { return s.svc }
