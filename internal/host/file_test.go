package host

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every refused host file names the file, the line, the key path and
// what to do.
func TestLoadRefuses(t *testing.T) {
	for _, c := range []struct {
		file    string
		line    int
		path    string
		problem string
		fix     string
	}{
		{"unknown_section.yaml", 2, "servres", "unknown section", `did you mean "servers"?`},
		{"unknown_plugin.yaml", 4, "servers.a.plugin", `unknown plugin "toy.sever"`, `did you mean "toy.server"?`},
		{"unknown_key.yaml", 5, "servers.a.greting", "unknown key", `did you mean "greeting"?`},
		{"unknown_host_key.yaml", 3, "host.data_dri", "unknown key", `did you mean "data_dir"?`},
		{"unknown_component.yaml", 5, "servers.a.components[0]", `no registered plugin provides a component "greter"`, `did you mean "greeter"?`},
		{"component_config_key.yaml", 8, "servers.a.components[0].config.rout", "unknown key", `did you mean "route"?`},
		{"missing_channel.yaml", 7, "servers.a.out", `no channel "pars"`, `did you mean "parse"?`},
		{"missing_resource.yaml", 7, "servers.a.store", `no infrastructure resource "stor"`, `did you mean "store"?`},
		{"distributed_no_bus.yaml", 3, "channels.work", `no bus resource "bus"`, "add infrastructure:"},
		{"server_distributed_no_bus.yaml", 6, "servers.a.deployment.type", `no bus resource "bus"`, "add infrastructure:"},
		{"bad_deployment.yaml", 5, "channels.work.deployment.type", `unknown deployment type "distribute"`, `did you mean "distributed"?`},
		{"takes_no_components.yaml", 5, "servers.a.components", "takes no components", "remove components:"},
		{"plain_takes_no_keys.yaml", 5, "servers.a.listen", "unknown key", "takes no configuration"},
		{"wrong_type.yaml", 5, "servers.a.count", "cannot unmarshal", "write a value of that type"},
		{"local_with_subject.yaml", 4, "channels.work.subject", "only a distributed channel", "deployment: {type: distributed}"},
		{"deployments_disagree.yaml", 5, "channels.work", "both local (servers.a) and distributed (servers.b)", "its own deployment"},
		{"components_only_plugin.yaml", 4, "servers.a.plugin", "provides no server", "components:"},
		{"infra_not_provider.yaml", 3, "infrastructure.bus.plugin", "provides no resource", "move it under servers:"},
		{"no_plugin.yaml", 4, "servers.a", "no plugin", "convene host plugins"},
		{"syntax.yaml", 4, "", "not YAML", "fix the syntax"},
		{"infra_order.yaml", 3, "infrastructure.records.uses", `resource "store" is declared after records`, "move store above records"},
		{"duplicate.yaml", 5, "servers.a", "written twice (first at line 3)", "keep one"},
		{"missing_topology.yaml", 2, "topology", "cannot read the topology file", "relative to the host file"},
	} {
		t.Run(strings.TrimSuffix(c.file, ".yaml"), func(t *testing.T) {
			path := filepath.Join("testdata", c.file)
			_, err := Load(path)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not ErrConfig", err)
			}
			var ce ConfigErrors
			if !errors.As(err, &ce) || len(ce) != 1 {
				t.Fatalf("want one ConfigError, got %v", err)
			}
			e := ce[0]
			if e.File != path || e.Line != c.line || e.Path != c.path || !strings.Contains(e.Problem, c.problem) || !strings.Contains(e.Fix, c.fix) {
				t.Fatalf("got %s:%d %q: %q; %q\nwant %s:%d %q: %q; %q", e.File, e.Line, e.Path, e.Problem, e.Fix, path, c.line, c.path, c.problem, c.fix)
			}
			prefix := path + ":" + strconv.Itoa(c.line) + ": "
			if c.path != "" {
				prefix += c.path + ": "
			}
			if msg := err.Error(); !strings.Contains(msg, prefix) {
				t.Fatalf("message %q does not start its line with %q", msg, prefix)
			}
		})
	}
}

// Every mistake of a file is reported at once, in file order.
func TestLoadReportsEveryMistake(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "two_mistakes.yaml"))
	var ce ConfigErrors
	if !errors.As(err, &ce) || len(ce) != 2 {
		t.Fatalf("want two errors, got %v", err)
	}
	if ce[0].Path != "servers.a.greting" || ce[1].Path != "servers.b.plugin" {
		t.Fatalf("got %q and %q", ce[0].Path, ce[1].Path)
	}
}

func TestLoadGood(t *testing.T) {
	f, err := Load(filepath.Join("testdata", "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Host.Name != "demo-1" || f.Host.DataDir != "/tmp/demo" || f.Host.Platform != "p1" || f.Host.Bus != "bus" || f.Host.StatusInterval != 5*time.Second {
		t.Fatalf("host = %+v", f.Host)
	}
	var names []string
	for _, s := range f.Servers {
		names = append(names, s.Name+"="+s.Plugin)
	}
	if got := strings.Join(names, " "); got != "api=toy.server stream=toy.server parse=toy.hub process=toy.server" {
		t.Fatalf("servers in file order: %s", got)
	}
	parse := f.Servers[2]
	if len(parse.Components) != 2 || parse.Components[0].Plugin != "toy.parts" || parse.Components[0].Name != "greeter" || parse.Components[1].Name != "counter" {
		t.Fatalf("components = %+v %+v", parse.Components[0], parse.Components[1])
	}
	ch := map[string]*ChannelSection{}
	for _, c := range f.Channels {
		ch[c.Name] = c
	}
	if c := ch["parse"]; c.Kind != Local || c.Capacity != 8 {
		t.Fatalf("parse = %+v", c)
	}
	// process takes the deployment of the server that names it.
	if c := ch["process"]; c.Kind != Distributed || c.Subject != "channel.process" || c.Queue != "process" || c.Bus != "bus" || c.Capacity != 64 {
		t.Fatalf("process = %+v", c)
	}
	if f.Topology.Node == nil || !strings.HasSuffix(f.Topology.File, "topology.yaml") {
		t.Fatalf("topology = %+v", f.Topology)
	}
	var topo struct {
		Platforms []struct{ Moid string } `yaml:"platforms"`
	}
	if err := f.Topology.Node.Decode(&topo); err != nil || topo.Platforms[0].Moid != "p1" {
		t.Fatalf("topology decodes to %+v, %v", topo, err)
	}
}

// The plugin's configuration gets its defaults where the file says
// nothing, and the file's values where it does.
func TestConfigDefaults(t *testing.T) {
	f, err := Parse("defaults.yaml", []byte("host: {name: h}\nservers:\n  a: {plugin: toy.server}\n  b: {plugin: toy.server, greeting: hey}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := newProblems("defaults.yaml")
	a := decodeConfig(toyDefaults, f.Servers[0].node, "servers.a", p).(*toyConfig)
	b := decodeConfig(toyDefaults, f.Servers[1].node, "servers.b", p).(*toyConfig)
	if a.Greeting != "hello" || b.Greeting != "hey" || p.err() != nil {
		t.Fatalf("a=%q b=%q %v", a.Greeting, b.Greeting, p.err())
	}
}

func TestSuggest(t *testing.T) {
	for _, c := range []struct{ word, want string }{
		{"lisen", "listen"}, {"servres", "servers"}, {"xyz", ""}, {"Listen", "listen"}, {"onyl", "only"},
	} {
		if got := suggest(c.word, []string{"listen", "servers", "only"}); got != c.want {
			t.Errorf("suggest(%q) = %q, want %q", c.word, got, c.want)
		}
	}
}
