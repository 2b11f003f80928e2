package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/resources"
)

// startBus starts the embedded bus, or takes the external one's address
// and credentials. The embedded bus accepts only the role credentials of
// its set: made once in <DataDir>/creds and reused, or, without a data
// directory, this process's own set in memory (so platforms run side by
// side in one process reach each other's buses, and no other process
// reaches any).
func (s *Stack) startBus(o Options) error {
	s.busTLS, s.peerCreds = o.NATSTLS, o.PeerCreds
	if o.NATS != "" {
		s.natsURL = o.NATS
		if o.NATSCreds == "" {
			return nil
		}
		fi, err := os.Stat(o.NATSCreds)
		if err != nil {
			return fmt.Errorf("%w: --nats-creds: %w", bus.ErrNoCredential, err)
		}
		if !fi.IsDir() {
			s.credsFile = o.NATSCreds
			return nil
		}
		s.busCreds, err = bus.ReadCreds(o.NATSCreds)
		return err
	}
	eo := bus.EmbeddedOptions{
		NoListen:       o.NATSListen == "" || o.NATSListen == "none",
		Platform:       s.Config.Local().Moid,
		NodeConnPrefix: resources.NodeConnPrefix,
	}
	if !eo.NoListen {
		host, port, err := net.SplitHostPort(o.NATSListen)
		if err != nil {
			return fmt.Errorf("--nats-listen %q: %w", o.NATSListen, err)
		}
		eo.Host = host
		eo.Port, _ = strconv.Atoi(port)
	}
	if o.DataDir != "" {
		c, err := bus.OpenCreds(filepath.Join(o.DataDir, "creds"))
		if err != nil {
			return err
		}
		eo.Creds = c
	}
	var err error
	if s.embBus, err = bus.StartEmbedded(eo); err != nil {
		return err
	}
	s.defer_(func(context.Context) { s.embBus.Shutdown() })
	s.busCreds = s.embBus.Creds()
	if o.BusOverTCP {
		if s.embBus.URL() == "" {
			return errors.New("stack: BusOverTCP needs the embedded bus to listen (NATSListen)")
		}
		s.natsURL = s.embBus.URL()
	}
	return nil
}

// BusCreds is the credential set of the stack's bus: where the embedded
// bus's role files are (Dir), or nil when each service uses one file.
func (s *Stack) BusCreds() *bus.Creds { return s.busCreds }

// busOptions are a connection's to the stack's own bus as role.
func (s *Stack) busOptions(role bus.Role, name string) bus.Options {
	o := bus.Options{Role: role, Name: name}
	if s.embBus != nil {
		// Over TCP (BusOverTCP), connections outlive RestartBus.
		o.Embedded, o.OverTCP = s.embBus, s.natsURL != ""
		return o
	}
	if role == bus.RoleInternal {
		o.Role = bus.RoleAPI // no role may do everything on an external bus
	}
	o.URL, o.Creds, o.CredsFile, o.TLS = s.natsURL, s.busCreds, s.credsFile, s.busTLS
	return o
}

// connect opens a service's connection as role; it closes with the stack.
func (s *Stack) connect(role bus.Role, name string, onReconnect func()) (*bus.Bus, error) {
	o := s.busOptions(role, name)
	o.OnReconnect = onReconnect
	b, err := bus.Connect(o, s.log)
	if err != nil {
		return nil, err
	}
	s.defer_(func(context.Context) { b.Close() })
	return b, nil
}

// peerOptions are a connection's to the bus of another platform (moid, at
// url) as the platform role: with the credential given for that platform,
// else this platform's own.
func (s *Stack) peerOptions(moid, url, name string) bus.Options {
	o := bus.Options{URL: url, Role: bus.RolePlatform, Name: name, RetryOnFailedConnect: true, TLS: s.busTLS}
	switch {
	case s.peerCreds[moid] != "":
		o.CredsFile = s.peerCreds[moid]
	case s.credsFile != "":
		o.CredsFile = s.credsFile
	default:
		o.Creds = s.busCreds
	}
	return o
}
