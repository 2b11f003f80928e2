package testkit

import (
	"testing"

	"github.com/convene/convene/internal/bus"
)

// BusServer starts an embedded bus server (in-process only unless opts
// say otherwise), shut down when the test ends.
func BusServer(t testing.TB, opts bus.EmbeddedOptions) *bus.Embedded {
	t.Helper()
	e, err := bus.StartEmbedded(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

// Connect opens a connection to e (RoleInternal: it may do everything),
// closed when the test ends; name names it, "" leaves it unnamed.
func Connect(t testing.TB, e *bus.Embedded, name string) *bus.Bus {
	t.Helper()
	return Dial(t, bus.Options{Embedded: e, Name: name})
}

// Dial opens a connection with opts, closed when the test ends.
func Dial(t testing.TB, opts bus.Options) *bus.Bus {
	t.Helper()
	b, err := bus.Connect(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// Bus starts an in-process embedded bus server and opens a connection to
// it: the bus most tests need.
func Bus(t testing.TB) (*bus.Embedded, *bus.Bus) {
	t.Helper()
	e := BusServer(t, bus.EmbeddedOptions{NoListen: true})
	return e, Connect(t, e, "")
}
