package platform

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
)

// PluginID is PMS's plugin.
const PluginID = "convene.pms"

func init() {
	host.Register(host.Plugin{
		ID:     PluginID,
		Doc:    "PMS, the platform monitor: server rooms' and platforms' states, disaster recovery",
		Server: func() host.Server { return new(PluginServer) },
		Config: func() any { return NewPluginConfig() },
	})
}

// PluginConfig is a PMS server's section of a host file.
type PluginConfig struct {
	// Bus is the infrastructure entry PMS connects through.
	Bus host.ResourceRef `yaml:"bus"`
	// StateFile keeps the operators' decisions (rooms they failed,
	// switch-overs, DR modes) across restarts; default
	// <data_dir>/pms-<platform>.json.
	StateFile string `yaml:"state_file"`
	// InMemory forgets them when PMS stops.
	InMemory bool `yaml:"in_memory"`
}

// NewPluginConfig is the configuration with its defaults.
func NewPluginConfig() *PluginConfig { return &PluginConfig{Bus: "bus"} }

// busConnector is what PMS needs of the bus resource: its own connection,
// and connections to the buses of its masters and backups.
type busConnector interface {
	Connect(role bus.Role, name string) (*bus.Bus, error)
	ConnectPeer(moid, url, name string) (*bus.Bus, error)
}

// PluginServer runs PMS in a host.
type PluginServer struct {
	svc *Service
}

// Provision connects PMS to its bus and to its peers' buses, and makes it.
func (s *PluginServer) Provision(ctx host.Context, cfg any) error {
	c := cfg.(*PluginConfig)
	if c.InMemory && c.StateFile != "" {
		return errors.New("state_file and in_memory: PMS keeps its state in a file or forgets it, not both; remove one")
	}
	topo, err := config.FromTopology(ctx.Topology().File, ctx.Topology().Node)
	if err != nil {
		return err
	}
	conn, err := host.ResourceOf[busConnector](ctx, c.Bus)
	if err != nil {
		return err
	}
	local := topo.Local()
	o := Options{Platform: local.Moid, Rooms: local.Rooms, Self: specOf(local), Peers: map[string]*bus.Bus{}}
	for _, p := range topo.Platforms {
		switch {
		case p.Moid == local.Moid:
			continue
		case slices.Contains(p.Backups, local.Moid):
			o.Masters = append(o.Masters, specOf(p))
		case slices.Contains(local.Backups, p.Moid):
			o.Backups = append(o.Backups, specOf(p))
		default:
			continue
		}
		if p.Bus != "" {
			// PMS watches its masters and backups over their buses; a
			// platform down now is reconnected to when it comes back.
			pb, err := conn.ConnectPeer(p.Moid, p.Bus, "pms-"+local.Moid+"-to-"+p.Moid)
			if err != nil {
				return fmt.Errorf("the bus of platform %s: %w", p.Moid, err)
			}
			ctx.OnCleanup(pb.Close)
			o.Peers[p.Moid] = pb
		}
	}
	if !c.InMemory {
		path := c.StateFile
		if path == "" {
			path = filepath.Join(ctx.DataDir(), "pms-"+local.Moid+".json")
		}
		o.State = NewFileStore(path)
	}
	b, err := conn.Connect(bus.RolePMS, "pms-"+local.Moid)
	if err != nil {
		return err
	}
	ctx.OnCleanup(b.Close)
	if s.svc, err = New(o, b, ctx.Logger()); err != nil {
		return err
	}
	return nil
}

// Start starts PMS.
func (s *PluginServer) Start(ctx context.Context) error { return s.svc.Start(ctx) }

// Stop shuts PMS down.
func (s *PluginServer) Stop(ctx context.Context) error { return s.svc.Shutdown(ctx) }

// Service is the running PMS.
func (s *PluginServer) Service() *Service { return s.svc }

func specOf(p config.Platform) PlatformSpec {
	return PlatformSpec{Moid: p.Moid, Name: p.Name, NumberSegment: p.NumberSegment, Store: p.Store, Bus: p.Bus}
}
