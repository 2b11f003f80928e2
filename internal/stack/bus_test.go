package stack

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/resources"
	"github.com/convene/convene/internal/testkit"
)

// refusals records the bus's reports of subjects a connection's role may
// not use.
type refusals struct {
	mu   sync.Mutex
	msgs []string
}

func (r *refusals) Enabled(context.Context, slog.Level) bool { return true }
func (r *refusals) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *refusals) WithGroup(string) slog.Handler            { return r }
func (r *refusals) Handle(_ context.Context, rec slog.Record) error {
	if !strings.HasPrefix(rec.Message, "bus refused") {
		return nil
	}
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	r.mu.Lock()
	r.msgs = append(r.msgs, b.String())
	r.mu.Unlock()
	return nil
}

func (r *refusals) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// TestServicesKeepToTheirRoles runs a platform whose services each connect
// with their own role, plus a media node joining from outside with the
// mcu.creds the stack wrote, drives every kind of request through them,
// and checks that the bus refused nothing any of them did.
func TestServicesKeepToTheirRoles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rec := &refusals{}
	st, err := Start(ctx, Options{Config: config.Demo(), DataDir: dir, NATSListen: "127.0.0.1:0",
		Listen: "127.0.0.1:0", SimNodes: 1, Log: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Stop(context.Background()) })

	credsDir := filepath.Join(dir, "creds")
	if st.BusCreds().Dir() != credsDir {
		t.Fatalf("creds in %q, want %q", st.BusCreds().Dir(), credsDir)
	}
	mcuCreds := filepath.Join(credsDir, "mcu.creds")
	if fi, err := os.Stat(mcuCreds); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mcu.creds: %v %v", fi, err)
	}

	// Without a credential, nobody joins the bus.
	if _, err := bus.Connect(bus.Options{URL: st.BusURL(), Name: resources.NodeConnName("intruder")}, nil); !errors.Is(err, bus.ErrUnauthorized) {
		t.Fatalf("a node without credentials: %v", err)
	}
	// With mcu.creds, a node in another process does.
	nb := testkit.Dial(t, bus.Options{URL: st.BusURL(), CredsFile: mcuCreds, Role: bus.RoleMCU, Name: resources.NodeConnName("ext-1")})
	ext, err := medianode.New(medianode.Options{ID: "ext-1", IP: "127.0.2.1", Room: "room-a2", Platform: st.Config.Platform,
		HeartbeatInterval: st.Config.RMS.HeartbeatInterval}, nb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
	testkit.Eventually(t, 30*time.Second, testkit.Cond("both nodes up", func() bool {
		up := 0
		for _, n := range st.RMS.Nodes() {
			if n.State == protocol.NodeUp {
				up++
			}
		}
		return up == 2
	}))

	c := apiclient.New("http://"+st.API.Addr(), st.Token)
	var e164s []string
	for i := range 4 { // the least loaded node takes each: both get some
		conf, err := c.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: "roles", Domain: "demo", Scale: 8,
			Resolution: "720p", DurationMinutes: 30, Password: "1234"})
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		e164s = append(e164s, conf.E164)
	}
	name, pass := "renamed", "4321"
	for _, e := range e164s {
		if _, err := c.UpdateConference(ctx, e, apiclient.UpdateConferenceRequest{Name: &name, Password: &pass}); err != nil {
			t.Fatalf("update %s: %v", e, err)
		}
		if _, err := c.DelayConference(ctx, e, 5); err != nil {
			t.Fatalf("delay %s: %v", e, err)
		}
		m, err := c.StartMonitor(ctx, e, apiclient.MonitorRequest{IP: "10.0.0.9", Port: 5000})
		if err != nil {
			t.Fatalf("monitor %s: %v", e, err)
		}
		if err := c.KeepMonitorAlive(ctx, e, m.Addr); err != nil {
			t.Fatalf("keep-alive %s: %v", e, err)
		}
		if err := c.StopMonitor(ctx, e, m.Addr); err != nil {
			t.Fatalf("stop monitor %s: %v", e, err)
		}
		if _, err := c.Registry(ctx, e); err != nil {
			t.Fatalf("registry %s: %v", e, err)
		}
	}
	// The node outside asks the scheduler for a delay and the CM for a
	// rename of a conference it hosts.
	for _, e := range e164s {
		if !ext.Hosts(e) {
			continue
		}
		if _, err := ext.RequestDelay(ctx, e, 5); err != nil {
			t.Fatalf("node's delay: %v", err)
		}
		if _, err := ext.RequestRename(e, "by the node"); err != nil {
			t.Fatalf("node's rename: %v", err)
		}
		testkit.Eventually(t, 30*time.Second, testkit.Cond("the node's rename approved", func() bool {
			got, err := c.Conference(ctx, e)
			return err == nil && got.Name == "by the node"
		}))
		break
	}
	if _, err := c.Nodes(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rooms(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Platforms(ctx); err != nil {
		t.Fatal(err)
	}
	tpl, err := c.CreateTemplate(ctx, apiclient.TemplateRequest{Name: "weekly", Domain: "demo", Scale: 8, Resolution: "720p", DurationMinutes: 60, Public: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTemplate(ctx, tpl.E164); err != nil {
		t.Fatal(err)
	}
	for _, e := range e164s {
		if err := c.EndConference(ctx, e); err != nil {
			t.Fatalf("end %s: %v", e, err)
		}
	}
	testkit.Eventually(t, 30*time.Second, testkit.Cond("every node empty", func() bool {
		return len(ext.Conferences()) == 0 && len(st.Nodes[0].Conferences()) == 0
	}))
	// Everyone's last words have reached the server.
	for _, b := range []*bus.Bus{st.Bus, nb} {
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if r := rec.seen(); len(r) > 0 {
		t.Fatalf("the bus refused what a service needs:\n%s", strings.Join(r, "\n"))
	}
}

// TestCredsSurviveARestart: a second stack on the same data directory
// takes the credentials the first wrote, so nodes keep theirs.
func TestCredsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	start := func() *Stack {
		st, err := Start(context.Background(), Options{Config: config.Demo(), DataDir: dir, NATSListen: "127.0.0.1:0", Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := start()
	file := filepath.Join(dir, "creds", "mcu.creds")
	before, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	st.Stop(context.Background())
	st = start()
	defer st.Stop(context.Background())
	after, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatal("mcu.creds changed across a restart")
	}
	b, err := bus.Connect(bus.Options{URL: st.BusURL(), CredsFile: file, Role: bus.RoleMCU, Name: resources.NodeConnName("n1")}, nil)
	if err != nil {
		t.Fatalf("the old mcu.creds on the restarted bus: %v", err)
	}
	b.Close()
}
