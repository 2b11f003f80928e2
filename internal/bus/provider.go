package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
)

// NodeConnPrefix starts the name of every media node's bus connection:
// the embedded server binds a connection with the mcu credential to the
// node its name ends with (EmbeddedOptions.NodeConnPrefix).
const NodeConnPrefix = "mcu:"

// NodeConnName is the name a media node gives its bus connection.
func NodeConnName(id string) string { return NodeConnPrefix + id }

// ProviderOptions say where a process's services find the bus: an
// external NATS server (URL), or a server embedded in this process.
type ProviderOptions struct {
	// URL of an external server; empty embeds one.
	URL string
	// Creds, with URL: this process's credential on that bus, one creds
	// file for every role or a directory of <role>.creds files.
	Creds string
	// TLS to an external server and to other platforms' buses.
	TLS TLSFiles
	// PeerCreds are credential files, by platform moid, for other
	// platforms' buses (disaster recovery); default this process's own
	// credential of the platform role.
	PeerCreds map[string]string

	// Listen is where the embedded server listens for other processes;
	// "" or "none": in-process connections only.
	Listen string
	// CredsDir keeps the embedded server's role credentials, made once
	// and reused; empty: this process's own set, in memory only, so that
	// no other process can join.
	CredsDir string
	// OverTCP connects the services to the embedded server over loopback
	// TCP instead of in-process, so that the server can be restarted under
	// them (Restart). Needs Listen.
	OverTCP bool
	// Platform is the moid whose subjects the embedded server's role
	// permissions name; default any platform.
	Platform string

	Log *slog.Logger
}

// Provider is what a process's services connect to the bus through: each
// connection with its role's credential, to the external server or to the
// one embedded in this process, which the provider runs.
type Provider struct {
	opts ProviderOptions
	log  *slog.Logger

	// External bus: one credential file for every role, or a set.
	credsFile string
	creds     *Creds

	mu  sync.Mutex
	emb *Embedded
}

// NewProvider starts the embedded server (no URL), or checks the external
// bus's credentials. Close shuts the embedded server down.
func NewProvider(o ProviderOptions) (*Provider, error) {
	p := &Provider{opts: o, log: o.Log}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if o.URL != "" {
		if o.Listen != "" && o.Listen != "none" || o.CredsDir != "" || o.OverTCP {
			return nil, errors.New("bus: an external bus (url) takes no embedded settings (listen, creds directory, over TCP): remove them, or the url")
		}
		if o.Creds == "" {
			return p, nil
		}
		fi, err := os.Stat(o.Creds)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoCredential, err)
		}
		if !fi.IsDir() {
			p.credsFile = o.Creds
			return p, nil
		}
		if p.creds, err = ReadCreds(o.Creds); err != nil {
			return nil, err
		}
		return p, nil
	}
	if o.Creds != "" || o.TLS != (TLSFiles{}) {
		return nil, errors.New("bus: credentials and TLS files are for an external bus (url); the embedded bus makes its own credentials")
	}
	eo := EmbeddedOptions{
		NoListen:       o.Listen == "" || o.Listen == "none",
		Platform:       o.Platform,
		NodeConnPrefix: NodeConnPrefix,
	}
	if !eo.NoListen {
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("bus: listen address %q: %w", o.Listen, err)
		}
		eo.Host = host
		if eo.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("bus: listen address %q: the port is not a number", o.Listen)
		}
	}
	if o.OverTCP && eo.NoListen {
		return nil, errors.New("bus: services reach the embedded bus over TCP only when it listens: give it a listen address")
	}
	if o.CredsDir != "" {
		c, err := OpenCreds(o.CredsDir)
		if err != nil {
			return nil, err
		}
		eo.Creds = c
	}
	e, err := StartEmbedded(eo)
	if err != nil {
		return nil, err
	}
	p.emb = e
	return p, nil
}

// Connect opens a connection as role, named name.
func (p *Provider) Connect(role Role, name string) (*Bus, error) {
	return Connect(p.Options(role, name), p.log)
}

// ConnectNotify is Connect, with onReconnect told each time the
// connection comes back after a loss.
func (p *Provider) ConnectNotify(role Role, name string, onReconnect func()) (*Bus, error) {
	o := p.Options(role, name)
	o.OnReconnect = onReconnect
	return Connect(o, p.log)
}

// Options are a connection's options as role: Connect's, for a caller
// that sets more of them.
func (p *Provider) Options(role Role, name string) Options {
	o := Options{Role: role, Name: name}
	if e := p.Embedded(); e != nil {
		// Over TCP, connections outlive Restart.
		o.Embedded, o.OverTCP = e, p.opts.OverTCP
		return o
	}
	if role == RoleInternal {
		o.Role = RoleAPI // no role may do everything on an external bus
	}
	o.URL, o.Creds, o.CredsFile, o.TLS = p.opts.URL, p.creds, p.credsFile, p.opts.TLS
	return o
}

// Events opens a system connection to the embedded server, on which
// connections' ends and starts are heard (ConnEventsSubject); nil, nil on
// an external bus, which says nothing of other clients.
func (p *Provider) Events(name string, onReconnect func()) (*Bus, error) {
	e := p.Embedded()
	if e == nil {
		return nil, nil
	}
	return Connect(Options{Embedded: e, OverTCP: p.opts.OverTCP, System: true, Name: name, OnReconnect: onReconnect}, p.log)
}

// ConnectPeer opens a connection to the bus of another platform (moid,
// at url) as the platform role: with the credential given for that
// platform, else this process's own. It keeps trying in the background
// while that bus is down.
func (p *Provider) ConnectPeer(moid, url, name string) (*Bus, error) {
	return Connect(p.PeerOptions(moid, url, name), p.log)
}

// PeerOptions are ConnectPeer's options.
func (p *Provider) PeerOptions(moid, url, name string) Options {
	o := Options{URL: url, Role: RolePlatform, Name: name, RetryOnFailedConnect: true, TLS: p.opts.TLS}
	switch {
	case p.opts.PeerCreds[moid] != "":
		o.CredsFile = p.opts.PeerCreds[moid]
	case p.credsFile != "":
		o.CredsFile = p.credsFile
	default:
		o.Creds = p.Creds()
	}
	return o
}

// URL is where other processes reach the bus: the external server's
// address as given (it may carry a password: print it with RedactURL),
// or the embedded server's, "" when it listens for nobody.
func (p *Provider) URL() string {
	if e := p.Embedded(); e != nil {
		return e.URL()
	}
	return p.opts.URL
}

// External reports whether the bus is an external server.
func (p *Provider) External() bool { return p.opts.URL != "" }

// Creds is the credential set connections use: the embedded server's, or
// an external bus's directory of role files; nil when every role uses one
// file, or the external bus asks for none.
func (p *Provider) Creds() *Creds {
	if e := p.Embedded(); e != nil {
		return e.Creds()
	}
	return p.creds
}

// Embedded is the server embedded in this process, nil on an external bus.
func (p *Provider) Embedded() *Embedded {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.emb
}

// Restart shuts the embedded server down and starts it again on the same
// address: connections made over TCP reconnect by themselves.
func (p *Provider) Restart() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.emb == nil || !p.opts.OverTCP {
		return errors.New("bus: only an embedded bus the services reach over TCP can restart under them")
	}
	e, err := p.emb.Restart()
	if err != nil {
		return err
	}
	p.emb = e
	return nil
}

// Kick cuts the embedded server's connections named name once, as a
// network blip does; it reports how many it cut (0 on an external bus).
func (p *Provider) Kick(name string) int {
	e := p.Embedded()
	if e == nil {
		return 0
	}
	return e.Kick(name)
}

// Close shuts the embedded server down (whichever runs after restarts);
// an external bus is left alone. Safe to repeat.
func (p *Provider) Close() {
	p.mu.Lock()
	e := p.emb
	p.mu.Unlock()
	if e != nil {
		e.Shutdown()
	}
}
