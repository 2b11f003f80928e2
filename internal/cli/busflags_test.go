package cli

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/resources"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/testkit"
)

// lockedBuffer is an output a command writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// The banner of serve says where the credentials are and prints no
// password: the embedded default, and an external bus reached with a
// directory of role credentials and a URL that carries a password.
func TestServeBannerShowsWhereCredsAreAndNoSecret(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o := stack.Options{Config: config.Demo(), DataDir: dir, NATSListen: "127.0.0.1:0", Listen: "127.0.0.1:0"}
	st, err := stack.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printBus(&out, st, o)
	st.Stop(ctx)
	want := "  creds:  " + filepath.Join(dir, "creds") + "/ (mcu.creds for media nodes"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("banner:\n%s\nwant a line starting %q", out.String(), want)
	}

	// An external bus, with the role files of a directory.
	credsDir := filepath.Join(t.TempDir(), "creds")
	creds, err := bus.OpenCreds(credsDir)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := bus.StartEmbedded(bus.EmbeddedOptions{Creds: creds, Platform: "plat-a", NodeConnPrefix: resources.NodeConnPrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Shutdown()
	o = stack.Options{Config: config.Demo(), NATS: ext.URL(), NATSCreds: credsDir, Listen: "127.0.0.1:0", SimNodes: 1}
	st, err = stack.Start(ctx, o)
	if err != nil {
		t.Fatalf("serve on an external bus with a creds directory: %v", err)
	}
	defer st.Stop(ctx)
	testkit.AwaitWithin(t, 30*time.Second, "the node up on the external bus", func() bool {
		for _, n := range st.RMS.Nodes() {
			if n.State == protocol.NodeUp {
				return true
			}
		}
		return false
	})
	// The URL of an external bus may carry a password: never printed.
	o.NATS = strings.Replace(ext.URL(), "nats://", "nats://convene:s3cret@", 1)
	out.Reset()
	printBus(&out, st, o)
	if strings.Contains(out.String(), "s3cret") || !strings.Contains(out.String(), "nats://convene:xxxxx@") ||
		!strings.Contains(out.String(), "creds:  "+credsDir) {
		t.Fatalf("banner:\n%s", out.String())
	}
}

// mcu-sim joins the bus only with the media nodes' credential.
func TestMCUSimTakesItsCredential(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "creds")
	creds, err := bus.OpenCreds(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := bus.StartEmbedded(bus.EmbeddedOptions{Creds: creds, Platform: "plat-a", NodeConnPrefix: resources.NodeConnPrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	t.Setenv("CONVENE_NATS_CREDS", "")

	run := func(args ...string) (*lockedBuffer, context.CancelFunc, chan error) {
		cmd := newMCUSimCommand()
		out := &lockedBuffer{}
		cmd.SetOut(out)
		cmd.SetErr(&lockedBuffer{})
		cmd.SetArgs(append([]string{"--nats", e.URL(), "--log-level", "error"}, args...))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- cmd.ExecuteContext(ctx) }()
		return out, cancel, done
	}

	_, cancel, done := run("--id", "n1")
	if err := <-done; !errors.Is(err, bus.ErrUnauthorized) {
		t.Fatalf("mcu-sim without --nats-creds: %v, want ErrUnauthorized", err)
	}
	cancel()
	_, cancel, done = run("--id", "n1", "--nats-creds", creds.File(bus.RoleRMS))
	if err := <-done; !errors.Is(err, bus.ErrUnauthorized) {
		t.Fatalf("mcu-sim with RMS's credential: %v, want ErrUnauthorized", err)
	}
	cancel()

	out, cancel, done := run("--id", "n", "--count", "2", "--nats-creds", creds.File(bus.RoleMCU))
	testkit.AwaitWithin(t, 30*time.Second, "two nodes started", func() bool { return strings.Count(out.String(), "started") == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("mcu-sim with mcu.creds: %v", err)
	}
}
