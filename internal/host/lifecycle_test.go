package host

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// The host runs every step of every instance in order: infrastructure
// first; all provisioned and validated before anything starts;
// components started and loaded before their server starts; on stop,
// each server stopped before its components, subscriptions ended before
// Stop, everything cleaned up in reverse.
func TestLifecycleOrder(t *testing.T) {
	h := startHost(t, `
host: {name: order}
infrastructure:
  store: {plugin: toy.store}
servers:
  a:
    plugin: toy.server
    store: store
    track: true
    components: [greeter]
  b: {plugin: toy.hub}
`)
	if err := h.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"store#1 provision", "store#1 validate", "store#1 start",
		"a#1 provision", "a#1 validate", "a/greeter#1 provision", "a/greeter#1 validate",
		"b#1 provision", "b#1 validate",
		"a/greeter#1 start", "a#1 load greeter", "a#1 start",
		"b#1 start",
		"b#1 stop", "b#1 cleanup",
		"a#1 unsubscribe", "a#1 stop", "a/greeter#1 stop", "a/greeter#1 cleanup", "a#1 cleanup",
		"store#1 stop", "store#1 cleanup",
	}
	if got := eventsOf("order"); !slices.Equal(got, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A step that fails stops the host's start: what started is stopped, and
// every instance made is cleaned up exactly once, the failing one too.
func TestStartFailureCleansUp(t *testing.T) {
	for _, c := range []struct {
		phase    string
		made     []string // instances that must be cleaned up
		started  []string // and stopped
		notReach string   // a step the failure must prevent
	}{
		{"provision", []string{"store#1", "a#1", "a/greeter#1", "b#1"}, []string{"store#1"}, "a#1 start"},
		{"validate", []string{"store#1", "a#1", "a/greeter#1", "b#1"}, []string{"store#1"}, "a#1 start"},
		{"start", []string{"store#1", "a#1", "a/greeter#1", "b#1"}, []string{"store#1", "a#1", "a/greeter#1"}, ""},
	} {
		t.Run(c.phase, func(t *testing.T) {
			name := "fail-" + c.phase
			f, err := Parse(name+".yaml", []byte(`
host: {name: `+name+`}
infrastructure:
  store: {plugin: toy.store}
servers:
  a: {plugin: toy.server, components: [greeter]}
  b: {plugin: toy.hub, fail: `+c.phase+`}
`))
			if err != nil {
				t.Fatal(err)
			}
			forget(name)
			h, err := New(f, Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = h.Start(context.Background())
			if !errors.Is(err, errToy) || !strings.Contains(err.Error(), "servers.b (toy.hub)") || !strings.Contains(err.Error(), c.phase) {
				t.Fatalf("Start = %v; want the toy failure naming servers.b (toy.hub) and %s", err, c.phase)
			}
			got := eventsOf(name)
			for _, inst := range c.made {
				if n := count(got, inst+" cleanup"); n != 1 {
					t.Errorf("%s cleaned up %d times:\n%s", inst, n, strings.Join(got, "\n"))
				}
			}
			for _, inst := range c.started {
				if n := count(got, inst+" stop"); n != 1 {
					t.Errorf("%s stopped %d times:\n%s", inst, n, strings.Join(got, "\n"))
				}
			}
			if c.notReach != "" && slices.Contains(got, c.notReach) {
				t.Errorf("%q happened after a failed %s", c.notReach, c.phase)
			}
			st := h.Status(context.Background())
			if st.Running || st.Servers[1].State != StateFailed || !strings.Contains(st.Servers[1].Error, "toy failure") {
				t.Fatalf("status after a failed start: %+v", st)
			}
			if st.Servers[0].State != StateStopped || st.Infrastructure[0].State != StateStopped {
				t.Fatalf("status after a failed start: %+v", st)
			}
		})
	}
}

func count(l []string, s string) int {
	n := 0
	for _, x := range l {
		if x == s {
			n++
		}
	}
	return n
}

// A component that fails to load into its server fails the start, and
// is cleaned up.
func TestLoadFailure(t *testing.T) {
	f, err := Parse("load.yaml", []byte(`
host: {name: loadfail}
servers:
  a: {plugin: toy.server, fail: load greeter, components: [greeter]}
`))
	if err != nil {
		t.Fatal(err)
	}
	forget("loadfail")
	h, _ := New(f, Options{})
	err = h.Start(context.Background())
	if !errors.Is(err, errToy) || !strings.Contains(err.Error(), "refused component toy.parts/greeter") {
		t.Fatalf("Start = %v", err)
	}
	got := eventsOf("loadfail")
	for _, ev := range []string{"a/greeter#1 stop", "a/greeter#1 cleanup", "a#1 cleanup"} {
		if count(got, ev) != 1 {
			t.Errorf("want %q once:\n%s", ev, strings.Join(got, "\n"))
		}
	}
	if slices.Contains(got, "a#1 start") {
		t.Error("the server started without its component")
	}
}
