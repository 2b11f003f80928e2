package medianode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/protocol"
)

// SimPluginID is the plugin of simulated media nodes.
const SimPluginID = "convene.mcusim"

func init() {
	host.Register(host.Plugin{
		ID:     SimPluginID,
		Doc:    "simulated media nodes (MCUs): count nodes speaking the media-node protocol, each on its own bus connection",
		Server: func() host.Server { return new(SimServer) },
		Config: func() any { return NewSimConfig() },
	})
}

// SimConfig is a simulated-nodes server's section of a host file.
type SimConfig struct {
	// Bus is the infrastructure entry the nodes connect through.
	Bus host.ResourceRef `yaml:"bus"`
	// Count nodes are named <prefix>-<first> ... <prefix>-<first+count-1>;
	// ids must be unique on the platform, across hosts.
	Count  int    `yaml:"count"`
	Prefix string `yaml:"prefix"`
	First  int    `yaml:"first"`
	// Capacity is the most conferences each node hosts.
	Capacity int `yaml:"capacity"`
	// Rooms the nodes sit in, in turn; default the platform's rooms.
	Rooms []string `yaml:"rooms"`
	// Legacy nodes' conferences are never moved.
	Legacy bool `yaml:"legacy"`
	// SIP is the address (an IP) on which each node answers SIP calls to
	// its conferences, on a UDP port of its own; empty: none.
	SIP string `yaml:"sip"`
}

// NewSimConfig is the configuration with its defaults.
func NewSimConfig() *SimConfig {
	return &SimConfig{Bus: "bus", Count: 3, Prefix: "sim", First: 1, Capacity: 1000}
}

// busConnector is what the nodes need of the bus resource.
type busConnector interface {
	Connect(role bus.Role, name string) (*bus.Bus, error)
}

// SimServer runs simulated media nodes in a host.
type SimServer struct {
	conn  busConnector
	opts  []Options
	log   *slog.Logger
	mu    sync.Mutex
	nodes []*Node
	buses []*bus.Bus
}

// Provision checks the configuration against the topology.
func (s *SimServer) Provision(ctx host.Context, cfg any) error {
	c := cfg.(*SimConfig)
	if c.Count < 1 || c.First < 1 || c.Capacity < 1 {
		return errors.New("count, first and capacity: give each at least 1")
	}
	topo, err := config.FromTopology(ctx.Topology().File, ctx.Topology().Node)
	if err != nil {
		return err
	}
	local := topo.Local()
	rooms := c.Rooms
	if len(rooms) == 0 {
		for _, r := range local.Rooms {
			rooms = append(rooms, r.Moid)
		}
	}
	for _, r := range rooms {
		if !slices.ContainsFunc(local.Rooms, func(x config.Room) bool { return x.Moid == r }) {
			return fmt.Errorf("rooms: %q is not a room of platform %s: name one of its rooms", r, local.Moid)
		}
	}
	if s.conn, err = host.ResourceOf[busConnector](ctx, c.Bus); err != nil {
		return err
	}
	sipListen := ""
	if c.SIP != "" {
		ip := net.ParseIP(c.SIP)
		if ip == nil {
			return fmt.Errorf("sip: %q is not an IP address; give the address the nodes answer SIP on, e.g. 127.0.0.1", c.SIP)
		}
		sipListen = net.JoinHostPort(ip.String(), "0")
	}
	for i := range c.Count {
		n := c.First + i
		id := fmt.Sprintf("%s-%d", c.Prefix, n)
		if !protocol.ValidToken(id) {
			return fmt.Errorf("prefix %q: node id %q is not a valid id; use letters, digits, '-' or '_'", c.Prefix, id)
		}
		s.opts = append(s.opts, Options{
			ID: id, IP: SimIP(n), Room: rooms[i%len(rooms)], Platform: local.Moid,
			Capacity: c.Capacity, Legacy: c.Legacy, SIPListen: sipListen,
			HeartbeatInterval: topo.RMS.HeartbeatInterval, ConfListInterval: topo.RMS.ConfListInterval,
		})
	}
	s.log = ctx.Logger()
	return nil
}

// Start starts every node, each on its own connection (so that closing it
// is a lost connection, as when a node's process dies).
func (s *SimServer) Start(ctx context.Context) error {
	for _, o := range s.opts {
		b, err := s.conn.Connect(bus.RoleMCU, bus.NodeConnName(o.ID))
		if err != nil {
			return errors.Join(err, s.Stop(ctx))
		}
		n, err := New(o, b, s.log)
		if err == nil {
			err = n.Start(ctx)
		}
		if err != nil {
			b.Close()
			return errors.Join(err, s.Stop(ctx))
		}
		s.mu.Lock()
		s.nodes, s.buses = append(s.nodes, n), append(s.buses, b)
		s.mu.Unlock()
	}
	return nil
}

// Stop shuts every node down and closes its connection.
func (s *SimServer) Stop(ctx context.Context) error {
	s.mu.Lock()
	nodes, buses := s.nodes, s.buses
	s.nodes, s.buses = nil, nil
	s.mu.Unlock()
	var errs []error
	for i, n := range nodes {
		errs = append(errs, n.Shutdown(ctx))
		buses[i].Close()
	}
	return errors.Join(errs...)
}

// Nodes are the running nodes, in order.
func (s *SimServer) Nodes() []*Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.nodes)
}

// Conn is node i's bus connection: closing it is the node's process
// dying, as far as the bus can tell.
func (s *SimServer) Conn(i int) *bus.Bus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buses[i]
}
