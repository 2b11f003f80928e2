package bus

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
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
	// SystemPassword of the system user; default random. Give the old one
	// to a server that replaces another, so system connections reconnect.
	SystemPassword string
	// Creds are the credentials the server accepts, one per role; default
	// this process's own (ProcessCreds), which no other process holds.
	Creds *Creds
	// Platform is the moid whose subjects the roles' permissions name;
	// default any platform.
	Platform string
	// NodeConnPrefix, when set, binds a media node to its id: a connection
	// with the mcu credential must be named NodeConnPrefix+<node id> and
	// may read only that node's subject, and no other role may take such
	// a name.
	NodeConnPrefix string
}

// Embedded is a NATS server running inside this process. Every client
// must prove it holds one of the credentials in Creds, and may then use
// only its role's subjects (Permissions); a system user, known only to
// this process, can watch connections come and go (ConnEventsSubject).
type Embedded struct {
	srv     *server.Server
	opts    EmbeddedOptions
	sysPass string
}

// Accounts of the embedded server.
const (
	AppAccount    = "APP"
	systemAccount = "SYS"
	systemUser    = "sys"
)

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
	if opts.Creds == nil {
		c, err := ProcessCreds()
		if err != nil {
			return nil, err
		}
		opts.Creds = c
	}
	if opts.SystemPassword == "" {
		opts.SystemPassword = randomPassword()
	}
	app, sys := server.NewAccount(AppAccount), server.NewAccount(systemAccount)
	auth, err := newAuthenticator(opts.Creds, opts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	srv, err := server.NewServer(&server.Options{
		Host:                       opts.Host,
		Port:                       port,
		DontListen:                 opts.NoListen,
		NoSigs:                     true,
		NoLog:                      true,
		MaxPayload:                 opts.MaxPayload,
		Accounts:                   []*server.Account{app, sys},
		SystemAccount:              systemAccount,
		CustomClientAuthentication: auth,
		AlwaysEnableNonce:          true,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	auth.srv = srv
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("bus: embedded server did not become ready")
	}
	return &Embedded{srv: srv, opts: opts, sysPass: opts.SystemPassword}, nil
}

// Creds are the credentials the server accepts.
func (e *Embedded) Creds() *Creds { return e.opts.Creds }

// Restart shuts the server down and starts a new one with the same
// options on the same address; clients connected over TCP reconnect.
func (e *Embedded) Restart() (*Embedded, error) {
	opts := e.opts
	if a, ok := e.srv.Addr().(*net.TCPAddr); ok {
		opts.Port = a.Port
	}
	e.Shutdown()
	return StartEmbedded(opts)
}

// Kick cuts the connections named name, as a network blip does; their
// clients reconnect by themselves. It reports how many it cut.
func (e *Embedded) Kick(name string) int {
	conns, err := e.srv.Connz(&server.ConnzOptions{Limit: 100000})
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range conns.Conns {
		if c.Name == name && e.srv.DisconnectClientByID(c.Cid) == nil {
			n++
		}
	}
	return n
}

func randomPassword() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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
