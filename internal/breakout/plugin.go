package breakout

import (
	"context"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/store"
)

// PluginID is the breakout service's plugin.
const PluginID = "convene.breakout"

func init() {
	host.Register(host.Plugin{
		ID:     PluginID,
		Doc:    "breakout rooms (BMS): plans, moves, countdowns and the WebSocket; mounts /v1/conferences/{e164}/breakout on the API",
		Server: func() host.Server { return new(PluginServer) },
		Config: func() any { return NewPluginConfig() },
	})
}

// PluginConfig is a breakout server's section of a host file.
type PluginConfig struct {
	// Bus and Store are the infrastructure entries it uses.
	Bus   host.ResourceRef `yaml:"bus"`
	Store host.ResourceRef `yaml:"store"`
	// Instance names the instance; default bms-<random>, new at each
	// start.
	Instance string `yaml:"instance"`
	// SpeakerLimit is the most speakers of a main room.
	SpeakerLimit int `yaml:"speaker_limit"`
	// MaxRooms and MaxUsers bound a plan.
	MaxRooms int `yaml:"max_rooms"`
	MaxUsers int `yaml:"max_users"`
	// MaxDelay is the longest closing countdown.
	MaxDelay time.Duration `yaml:"max_delay"`
	// SweepInterval is how often the instance beats and tidies up;
	// InstanceTTL how long one may go without a beat before it is dead.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	InstanceTTL   time.Duration `yaml:"instance_ttl"`
	// TicketTTL is how long a WebSocket ticket is valid.
	TicketTTL time.Duration `yaml:"ticket_ttl"`
	// OriginPatterns are the hosts of web pages allowed to open a
	// WebSocket from another origin.
	OriginPatterns []string `yaml:"origin_patterns"`
}

// NewPluginConfig is the configuration with its defaults: the service's.
func NewPluginConfig() *PluginConfig {
	o := Options{Instance: "defaults"}
	_ = o.defaults()
	return &PluginConfig{
		Bus: "bus", Store: "store", SpeakerLimit: o.SpeakerLimit, MaxRooms: o.MaxRooms, MaxUsers: o.MaxUsers,
		MaxDelay: o.MaxDelay, SweepInterval: o.SweepInterval, InstanceTTL: o.InstanceTTL, TicketTTL: o.TicketTTL,
	}
}

// busConnector is what the service needs of the bus resource.
type busConnector interface {
	Connect(role bus.Role, name string) (*bus.Bus, error)
}

// PluginServer runs the breakout service in a host.
type PluginServer struct {
	svc *Service
}

// Provision connects the service, makes it and mounts its routes.
func (s *PluginServer) Provision(ctx host.Context, cfg any) error {
	c := cfg.(*PluginConfig)
	conn, err := host.ResourceOf[busConnector](ctx, c.Bus)
	if err != nil {
		return err
	}
	st, err := host.ResourceOf[*store.Store](ctx, c.Store)
	if err != nil {
		return err
	}
	b, err := conn.Connect(bus.RoleBreakout, "breakout-"+ctx.HostName()+"-"+ctx.Name())
	if err != nil {
		return err
	}
	ctx.OnCleanup(b.Close)
	s.svc, err = New(Options{
		Instance: c.Instance, SpeakerLimit: c.SpeakerLimit, MaxRooms: c.MaxRooms, MaxUsers: c.MaxUsers,
		MaxDelay: c.MaxDelay, SweepInterval: c.SweepInterval, InstanceTTL: c.InstanceTTL, TicketTTL: c.TicketTTL,
		OriginPatterns: c.OriginPatterns,
	}, Deps{Bus: b, Store: st, Log: ctx.Logger()})
	if err != nil {
		return err
	}
	for _, rt := range s.svc.Routes() {
		err := ctx.Mount(host.Route{Pattern: rt.Pattern, Handler: rt.Handler, Open: rt.Scope == httpkit.ScopeOpen, Scope: rt.Scope.String()})
		if err != nil {
			return err
		}
	}
	return nil
}

// Start starts the service.
func (s *PluginServer) Start(ctx context.Context) error { return s.svc.Start(ctx) }

// Stop shuts the service down: its clients are told to reconnect.
func (s *PluginServer) Stop(ctx context.Context) error { return s.svc.Shutdown(ctx) }

// Service is the running service.
func (s *PluginServer) Service() *Service { return s.svc }
