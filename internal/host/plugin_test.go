package host

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	for _, c := range []struct {
		id string
		ok bool
	}{
		{"convene.scheduler", true},
		{"convene.bus.nats", true},
		{"convene.sip_proxy-2", true},
		{"convene", false},
		{"Convene.scheduler", false},
		{"convene..scheduler", false},
		{".convene.scheduler", false},
		{"convene.scheduler.", false},
		{"convene.sched uler", false},
		{"convene/scheduler", false},
		{"", false},
	} {
		t.Run(c.id, func(t *testing.T) {
			if got := ValidID(c.id); got != c.ok {
				t.Fatalf("ValidID(%q) = %v, want %v", c.id, got, c.ok)
			}
		})
	}
}

func TestRegisterRefuses(t *testing.T) {
	srv := func() Server { return toyPlain{} }
	type badConfig struct {
		Plugin string `yaml:"plugin"`
	}
	for _, c := range []struct {
		name string
		p    Plugin
		want string
	}{
		{"one segment", Plugin{ID: "scheduler", Server: srv}, "at least two lowercase segments"},
		{"upper case", Plugin{ID: "Convene.x", Server: srv}, "at least two lowercase segments"},
		{"provides nothing", Plugin{ID: "convene.empty"}, "neither a server nor a component"},
		{"config without server", Plugin{ID: "convene.x", Config: toyDefaults, Components: map[string]ComponentInfo{"a": {New: func() Component { return 1 }}}}, "provides none"},
		{"bad component name", Plugin{ID: "convene.x", Components: map[string]ComponentInfo{"Bad Name": {New: func() Component { return 1 }}}}, "component name"},
		{"component without New", Plugin{ID: "convene.x", Components: map[string]ComponentInfo{"a": {}}}, "has no New"},
		{"config not a pointer", Plugin{ID: "convene.x", Server: srv, Config: func() any { return toyConfig{} }}, "pointer to a struct"},
		{"config uses a reserved key", Plugin{ID: "convene.x", Server: srv, Config: func() any { return new(badConfig) }}, `key "plugin"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(r.(string), c.want) {
					t.Fatalf("panic = %v, want one saying %q", r, c.want)
				}
			}()
			newRegistry().register(c.p)
		})
	}
}

func TestRegisterDuplicatePanics(t *testing.T) {
	r := newRegistry()
	p := Plugin{ID: "convene.once", Server: func() Server { return toyPlain{} }}
	r.register(p)
	defer func() {
		if v := recover(); v == nil || !strings.Contains(v.(string), "already registered") {
			t.Fatalf("panic = %v, want already registered", v)
		}
	}()
	r.register(p)
}

func TestRegistered(t *testing.T) {
	all := Registered()
	i := slices.IndexFunc(all, func(p PluginInfo) bool { return p.ID == "toy.parts" })
	if i < 0 {
		t.Fatalf("toy.parts missing from %v", all)
	}
	if p := all[i]; p.Server || !slices.Equal(p.Components, []string{"counter", "greeter"}) || p.Doc != "toy components" {
		t.Fatalf("toy.parts = %+v", p)
	}
	j := slices.IndexFunc(all, func(p PluginInfo) bool { return p.ID == "toy.server" })
	if j < 0 || !all[j].Server || len(all[j].Components) != 0 {
		t.Fatalf("toy.server = %+v", all)
	}
	if !slices.IsSortedFunc(all, func(a, b PluginInfo) int { return strings.Compare(a.ID, b.ID) }) {
		t.Fatal("Registered is not sorted by ID")
	}
}

func TestComponentReference(t *testing.T) {
	r := newRegistry()
	mk := func() Component { return 1 }
	r.register(Plugin{ID: "a.one", Components: map[string]ComponentInfo{"shared": {New: mk}, "only": {New: mk}}})
	r.register(Plugin{ID: "a.two", Components: map[string]ComponentInfo{"shared": {New: mk}}})
	for _, c := range []struct {
		ref, plugin, want string
	}{
		{"only", "a.one", ""},
		{"a.two/shared", "a.two", ""},
		{"shared", "", "name one as <plugin>/shared"},
		{"onyl", "", `did you mean "only"?`},
		{"a.tow/shared", "", `did you mean "a.two"?`},
		{"a.one/shraed", "", `did you mean "shared"?`},
	} {
		t.Run(c.ref, func(t *testing.T) {
			id, _, _, err := r.component(c.ref)
			if c.want == "" {
				if err != nil || id != c.plugin {
					t.Fatalf("component(%q) = %q, %v; want %s", c.ref, id, err, c.plugin)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("component(%q) error = %v, want %q", c.ref, err, c.want)
			}
		})
	}
}

// A toy plugin's server satisfies the interfaces the host looks for.
var (
	_ Provisioner     = (*toyServer)(nil)
	_ Validator       = (*toyServer)(nil)
	_ CleanerUpper    = (*toyServer)(nil)
	_ ComponentLoader = (*toyServer)(nil)
	_ HealthChecker   = (*toyServer)(nil)
	_ Provider        = (*toyStore)(nil)
	_                 = context.Background
)
