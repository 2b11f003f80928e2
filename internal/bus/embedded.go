package bus

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configure a NATS server run inside this process.
type EmbeddedOptions struct {
	// Host to listen on; default 127.0.0.1.
	Host string
	// Port to listen on; 0 picks a free port. NoListen overrides it.
	Port int
	// NoListen serves in-process connections only.
	NoListen bool
	// MaxPayload in bytes; default 8 MiB (conference lists of busy nodes).
	MaxPayload int32
}

// Embedded is a NATS server running inside this process.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server in this process and waits until it
// accepts connections.
func StartEmbedded(opts EmbeddedOptions) (*Embedded, error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	port := opts.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = 8 << 20
	}
	srv, err := server.NewServer(&server.Options{
		Host:       opts.Host,
		Port:       port,
		DontListen: opts.NoListen,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: opts.MaxPayload,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("bus: embedded server did not become ready")
	}
	return &Embedded{srv: srv}, nil
}

// URL is the nats:// address clients in other processes use; empty when the
// server does not listen.
func (e *Embedded) URL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
