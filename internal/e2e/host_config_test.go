package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
)

// convene runs the convene command line in a process of its own and
// returns its exit code and what it wrote.
func convene(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String()
	}
	t.Fatalf("convene %v: %v", args, err)
	return 0, ""
}

// `convene host --config` refuses a bad host file before anything starts:
// the message names the file, the line and the key, and says what to do.
func TestHostRefusesABadFile(t *testing.T) {
	for _, c := range []struct {
		name, file string
		want       []string
	}{
		{"unknown plugin", `
host: {name: bad}
servers:
  api: {plugin: convene.apii}
`, []string{":4: servers.api.plugin: unknown plugin \"convene.apii\"; did you mean \"convene.api\"?"}},
		{"unknown key", `
host: {name: bad}
infrastructure:
  bus: {plugin: convene.bus.nats}
  store: {plugin: convene.store.redis}
servers:
  api: {plugin: convene.api, lisen: "127.0.0.1:0"}
`, []string{":7: servers.api.lisen: unknown key; did you mean \"listen\"?"}},
		{"distributed channel without a bus", `
host: {name: bad}
servers:
  nodes: {plugin: convene.mcusim}
channels:
  work: {deployment: {type: distributed}}
`, []string{
			":6: channels.work: distributed, and the host has no bus resource \"bus\"; add infrastructure: {bus: {plugin: convene.bus.nats, ...}}, or make it deployment: {type: local}",
			":4: servers.nodes.bus: no infrastructure resource \"bus\"; declare it",
		}},
		{"distributed server without a bus", `
host: {name: bad}
servers:
  rms: {plugin: convene.rms, bus: "", deployment: {type: distributed}}
`, []string{":4: servers.rms.deployment.type: distributed, and the host has no bus resource \"bus\"; add infrastructure: {bus: {plugin: convene.bus.nats, ...}}, or make it deployment: {type: local}"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.yaml")
			if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out := convene(t, "host", "--config", path)
			if code == 0 {
				t.Fatalf("exit 0 for a bad file:\n%s", out)
			}
			if !strings.HasPrefix(out, "convene: HOST_CONFIG: ") {
				t.Fatalf("the refusal does not start with its code:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, path+w) {
					t.Errorf("the refusal does not say %q:\n%s", path+w, out)
				}
			}
			if strings.Contains(out, "is running") {
				t.Fatalf("the host started:\n%s", out)
			}
		})
	}
}

// The split deployment's host files are good ones: each is accepted, and
// its topology once a token replaces the placeholder.
func TestSplitDeploymentFiles(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy", "split")
	names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hosts := 0
	for _, path := range names {
		if filepath.Base(path) == "topology.yaml" {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := config.Parse(data); err == nil || !strings.Contains(err.Error(), "placeholder") {
				t.Fatalf("the topology with its placeholder token: %v", err)
			}
			data = []byte(strings.ReplaceAll(string(data), config.ExampleTokenSecret, "a-token-of-the-test-0123456789"))
			if _, err := config.Parse(data); err != nil {
				t.Fatalf("the topology: %v", err)
			}
			continue
		}
		f, err := host.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if f.Host.Name+".yaml" != filepath.Base(path) || f.Host.Bus != "bus" {
			t.Errorf("%s: host %s, management on %q", path, f.Host.Name, f.Host.Bus)
		}
		hosts++
	}
	if hosts != 6 {
		t.Fatalf("%d host files in %s, want 6 (api, sched-a, sched-b, control, breakout, nodes)", hosts, dir)
	}
}

// `convene host plugins` lists every plugin of the binary with what it
// provides and its keys.
func TestHostPlugins(t *testing.T) {
	code, out := convene(t, "host", "plugins")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{
		"convene.api ", "convene.breakout ", "convene.mcusim ", "convene.pms ", "convene.registry ", "convene.rms ", "convene.scheduler ",
		"convene.bus.nats ", "convene.store.redis ", "convene.records.sql ", "resource (infrastructure:)", "server (servers:)",
		"keys: {bus: bus, store: store, records: \"\", id: \"\"}",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
