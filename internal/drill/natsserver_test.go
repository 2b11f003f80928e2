package drill

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// The drill's nats-server takes the roles' authorization, refuses what a
// role may not do, and comes back on the same port after a kill, where
// connections find it again.
func TestNATSServerRestartsUnderItsClients(t *testing.T) {
	if _, err := NATSServerBinary(); err != nil {
		t.Fatalf("%v: make test installs it (scripts/install-deps.sh)", err)
	}
	dir := t.TempDir()
	creds, err := bus.OpenCreds(filepath.Join(dir, "creds"))
	if err != nil {
		t.Fatal(err)
	}
	authz, err := bus.AuthorizationConfig(creds, platformMoid)
	if err != nil {
		t.Fatal(err)
	}
	n, err := startNATS(dir, authz)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.kill)
	connect := func(role bus.Role, name string) *bus.Bus {
		t.Helper()
		b, err := bus.Connect(bus.Options{URL: n.URL(), CredsFile: creds.File(role), Role: role, Name: name}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}
	rms := connect(bus.RoleRMS, "rms")
	sched := connect(bus.RoleScheduler, "sched")
	node := connect(bus.RoleMCU, "mcu:n1")
	if _, err := rms.Subscribe(protocol.SubjectRMS(platformMoid), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		_ = m.Respond(protocol.NodeListAck{Type: protocol.RMSNodeListAck})
	})); err != nil {
		t.Fatal(err)
	}
	ask := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return sched.Call(ctx, protocol.SubjectRMS(platformMoid), protocol.Header{Type: protocol.RMSNodeListReq}, nil)
	}
	testkit.AwaitWithin(t, 20*time.Second, "the scheduler's request answered", func() bool { return ask() == nil })
	// A media node may not ask RMS for resources: the server says no.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := node.Call(ctx, protocol.SubjectRMS(platformMoid), protocol.Header{Type: protocol.RMSGetResReq}, nil); err == nil {
		t.Fatal("a media node's request on RMS's subject was answered: the authorization is not in force")
	}

	port := n.port
	if err := n.restart(); err != nil {
		t.Fatal(err)
	}
	if n.port != port {
		t.Fatalf("restarted on port %d, was %d", n.port, port)
	}
	testkit.AwaitWithin(t, 20*time.Second, "the request answered after the restart", func() bool { return ask() == nil })
}
