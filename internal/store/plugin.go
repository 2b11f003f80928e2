package store

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"

	"github.com/convene/convene/internal/host"
)

// PluginID is the store's plugin: an infrastructure server whose resource
// is the platform's *Store.
const PluginID = "convene.store.redis"

func init() {
	host.Register(host.Plugin{
		ID:     PluginID,
		Doc:    "the platform's state store: a redis-server, or one embedded in the host; resource: *store.Store",
		Server: func() host.Server { return new(PluginServer) },
		Config: func() any { return NewPluginConfig() },
	})
}

// PluginConfig is the store entry of a host file. With url, the host
// connects to that Redis server; without, it runs a Redis-protocol store
// itself (embedded).
type PluginConfig struct {
	// URL of the Redis server (redis://host:6379[/db]); empty embeds one.
	URL string `yaml:"url"`
	// BatchWorkers run group-commit scripts at once; 0: 2 on a Redis
	// server, 1 on the embedded store (it runs scripts one at a time).
	BatchWorkers int `yaml:"batch_workers"`
	// Embedded configures the store the host runs when there is no url.
	Embedded PluginEmbedded `yaml:"embedded"`
}

// PluginEmbedded configures the embedded store.
type PluginEmbedded struct {
	// Listen is its address; default a free loopback port.
	Listen string `yaml:"listen"`
	// Dir keeps its data across restarts; default <data_dir>/store.
	Dir string `yaml:"dir"`
	// InMemory keeps the data in memory only: gone when the host stops.
	InMemory bool `yaml:"in_memory"`
}

// NewPluginConfig is the configuration with its defaults: the one place
// they live.
func NewPluginConfig() *PluginConfig {
	return &PluginConfig{Embedded: PluginEmbedded{Listen: "127.0.0.1:0"}}
}

// PluginServer runs the store entry.
type PluginServer struct {
	ctx  host.Context
	url  string
	emb  EmbeddedOptions
	opts Options

	embedded *Embedded
	store    *Store
}

// Provision reads the configuration.
func (s *PluginServer) Provision(ctx host.Context, cfg any) error {
	c := cfg.(*PluginConfig)
	if c.URL != "" && !reflect.DeepEqual(c.Embedded, NewPluginConfig().Embedded) {
		return errors.New("embedded: is for the store the host runs itself, and url names a Redis server: remove one of them")
	}
	if c.BatchWorkers < 0 {
		return errors.New("batch_workers is negative: give 1 or more, or 0 for the default")
	}
	if c.Embedded.InMemory && c.Embedded.Dir != "" {
		return errors.New("embedded.dir and embedded.in_memory: the data is kept in a directory or in memory, not both; remove one")
	}
	s.ctx, s.url = ctx, c.URL
	s.opts = Options{URL: c.URL, BatchWorkers: c.BatchWorkers}
	if c.URL == "" {
		if s.opts.BatchWorkers == 0 {
			s.opts.BatchWorkers = 1
		}
		s.emb = EmbeddedOptions{Addr: c.Embedded.Listen, Log: ctx.Logger()}
		if !c.Embedded.InMemory {
			s.emb.Dir = c.Embedded.Dir
			if s.emb.Dir == "" {
				s.emb.Dir = filepath.Join(ctx.DataDir(), "store")
			}
		}
	}
	return nil
}

// Start starts the embedded store if there is one, then connects.
func (s *PluginServer) Start(ctx context.Context) error {
	if s.url == "" {
		e, err := StartEmbeddedWith(s.emb)
		if err != nil {
			return err
		}
		s.embedded = e
		s.opts.URL = e.URL()
	}
	st, err := Open(ctx, s.opts, s.ctx.Logger())
	if err != nil {
		if s.embedded != nil {
			s.embedded.Close()
			s.embedded = nil
		}
		return err
	}
	s.store = st
	return nil
}

// Stop closes the connection and the embedded store.
func (s *PluginServer) Stop(context.Context) error {
	var err error
	if s.store != nil {
		err = s.store.Close()
	}
	if s.embedded != nil {
		s.embedded.Close()
	}
	return err
}

// Resource is the store.
func (s *PluginServer) Resource() any { return s.store }

// Embedded is the store the host runs, nil with a Redis server.
func (s *PluginServer) Embedded() *Embedded { return s.embedded }

// Health says whether the store answers.
func (s *PluginServer) Health(ctx context.Context) error {
	if s.store == nil {
		return errors.New("not started")
	}
	return s.store.Ping(ctx)
}
