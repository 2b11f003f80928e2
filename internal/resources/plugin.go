package resources

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
)

// PluginID is RMS's plugin.
const PluginID = "convene.rms"

func init() {
	host.Register(host.Plugin{
		ID:     PluginID,
		Doc:    "RMS, the resource manager: media nodes' registration, liveness and load",
		Server: func() host.Server { return new(PluginServer) },
		Config: func() any { return NewPluginConfig() },
	})
}

// PluginConfig is an RMS server's section of a host file. Its tuning
// (heartbeats, grace, overload) is the topology's rms: section, shared
// with the media nodes of the platform.
type PluginConfig struct {
	// Bus is the infrastructure entry RMS connects through.
	Bus host.ResourceRef `yaml:"bus"`
}

// NewPluginConfig is the configuration with its defaults.
func NewPluginConfig() *PluginConfig { return &PluginConfig{Bus: "bus"} }

// busConnector is what RMS needs of the bus resource.
type busConnector interface {
	ConnectNotify(role bus.Role, name string, onReconnect func()) (*bus.Bus, error)
}

// eventSource is a bus resource that can also tell of connections ending
// (an embedded server).
type eventSource interface {
	Events(name string, onReconnect func()) (*bus.Bus, error)
}

// PluginServer runs RMS in a host.
type PluginServer struct {
	svc atomic.Pointer[Service]
}

// Provision connects RMS to the bus and makes it.
func (s *PluginServer) Provision(ctx host.Context, cfg any) error {
	c := cfg.(*PluginConfig)
	topo, err := config.FromTopology(ctx.Topology().File, ctx.Topology().Node)
	if err != nil {
		return err
	}
	res, err := ctx.Resource(c.Bus)
	if err != nil {
		return err
	}
	conn, ok := res.(busConnector)
	if !ok {
		return fmt.Errorf("bus: resource %q (%T) is no bus: name a convene.bus.nats entry", c.Bus, res)
	}
	local := topo.Local()
	// RMS must not count its own cut-off against the nodes.
	reconnected := func() {
		if svc := s.svc.Load(); svc != nil {
			svc.BusReconnected()
		}
	}
	var events *bus.Bus
	if es, ok := res.(eventSource); ok {
		if events, err = es.Events("rms-events", reconnected); err != nil {
			return err
		}
		if events != nil {
			ctx.OnCleanup(events.Close)
		}
	}
	b, err := conn.ConnectNotify(bus.RoleRMS, "rms-"+local.Moid, reconnected)
	if err != nil {
		return err
	}
	ctx.OnCleanup(b.Close)
	svc, err := New(Options{
		Platform: local.Moid, Rooms: local.Rooms, HeartbeatInterval: topo.RMS.HeartbeatInterval,
		MissedHeartbeats: topo.RMS.MissedHeartbeats, ConfListInterval: topo.RMS.ConfListInterval,
		Events: events, DisconnectGrace: topo.RMS.DisconnectGrace,
		OverloadLag: topo.RMS.OverloadLag, OverloadHold: topo.RMS.OverloadHold,
	}, b, ctx.Logger())
	if err != nil {
		return err
	}
	s.svc.Store(svc)
	return nil
}

// Start starts RMS.
func (s *PluginServer) Start(ctx context.Context) error { return s.svc.Load().Start(ctx) }

// Stop shuts RMS down.
func (s *PluginServer) Stop(ctx context.Context) error { return s.svc.Load().Shutdown(ctx) }

// Service is the running RMS.
func (s *PluginServer) Service() *Service { return s.svc.Load() }
