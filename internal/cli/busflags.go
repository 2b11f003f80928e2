package cli

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/convene/convene/internal/bus"
)

// busFlags are how a command reaches a platform's bus from another
// process: its address, the credential of the command's role, and TLS.
type busFlags struct {
	url   string
	creds string
	tls   bus.TLSFiles
}

func (b *busFlags) register(f *pflag.FlagSet, role bus.Role) {
	f.StringVar(&b.url, "nats", "", "NATS URL of the platform's bus (default $CONVENE_NATS)")
	f.StringVar(&b.creds, "nats-creds", "", fmt.Sprintf(
		"credential of the %s role on the bus (default $CONVENE_NATS_CREDS): convene serve writes it to .convene/creds/%s; a NATS .creds file or an nkey seed",
		role, bus.CredsFile(role)))
	registerTLSFlags(f, &b.tls)
}

func registerTLSFlags(f *pflag.FlagSet, t *bus.TLSFiles) {
	f.StringVar(&t.CAFile, "nats-tls-ca", "", "CA certificate (PEM) that verifies the NATS server")
	f.StringVar(&t.CertFile, "nats-tls-cert", "", "client certificate (PEM), for a NATS server that verifies clients")
	f.StringVar(&t.KeyFile, "nats-tls-key", "", "key (PEM) of --nats-tls-cert")
}

// options are the connection options of command cmd as role, named name.
func (b *busFlags) options(cmd string, role bus.Role, name string) (bus.Options, error) {
	url, creds := b.url, b.creds
	if url == "" {
		url = os.Getenv("CONVENE_NATS")
	}
	if url == "" {
		return bus.Options{}, fmt.Errorf("%s: no bus: give --nats nats://host:4222 or set CONVENE_NATS", cmd)
	}
	if creds == "" {
		creds = os.Getenv("CONVENE_NATS_CREDS")
	}
	return bus.Options{URL: url, CredsFile: creds, Role: role, Name: name, TLS: b.tls}, nil
}
