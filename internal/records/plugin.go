package records

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/convene/convene/internal/host"
)

// PluginID is the records plugin: an infrastructure server whose resource
// is the open *DB.
const PluginID = "convene.records.sql"

func init() {
	host.Register(host.Plugin{
		ID:     PluginID,
		Doc:    "records kept in SQL: a SQLite file in the data directory, or PostgreSQL; resource: *records.DB",
		Server: func() host.Server { return new(PluginServer) },
		Config: func() any { return NewPluginConfig() },
	})
}

// PluginConfig is the records entry of a host file.
type PluginConfig struct {
	// URL is sqlite://<file>, a file path, or postgres://user@host/db;
	// default the SQLite file <data_dir>/records.db.
	URL string `yaml:"url"`
}

// NewPluginConfig is the configuration with its defaults (the URL's
// default depends on the host's data directory, known at Provision).
func NewPluginConfig() *PluginConfig { return &PluginConfig{} }

// PluginServer runs the records entry.
type PluginServer struct {
	ctx host.Context
	url string
	db  *DB
}

// Provision reads the configuration and checks the URL.
func (s *PluginServer) Provision(ctx host.Context, cfg any) error {
	c := cfg.(*PluginConfig)
	s.ctx, s.url = ctx, c.URL
	if s.url == "" {
		s.url = filepath.Join(ctx.DataDir(), "records.db")
	}
	_, err := parseURL(s.url)
	return err
}

// Start opens the database and brings its schema up to date.
func (s *PluginServer) Start(ctx context.Context) error {
	db, err := Open(ctx, s.url, s.ctx.Logger())
	if err != nil {
		return err
	}
	s.db = db
	return nil
}

// Stop closes the database.
func (s *PluginServer) Stop(context.Context) error {
	if s.db == nil {
		return nil
	}
	return s.db.Close()
}

// Resource is the database.
func (s *PluginServer) Resource() any { return s.db }

// Health says whether the database answers.
func (s *PluginServer) Health(ctx context.Context) error {
	if s.db == nil {
		return errors.New("not started")
	}
	return s.db.Ping(ctx)
}
