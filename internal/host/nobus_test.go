package host

import (
	"context"
	"errors"
	"testing"
)

// host.bus: none keeps a host with a bus out of management on it: it
// answers no control request there (with the default, it does).
func TestHostBusNone(t *testing.T) {
	name, e := testBus(t)
	tr := OwnBusTransport(connect(t, e, "asker"))
	cl := NewClient(tr, "default")
	for _, c := range []struct {
		hostBus string
		answers bool
	}{{"", true}, {"none", false}} {
		file := "host: {name: nb-" + map[bool]string{true: "on", false: "off"}[c.answers] + "}\n"
		if c.hostBus != "" {
			file = "host: {name: nb-off, bus: " + c.hostBus + "}\n"
		}
		file += "infrastructure:\n  bus: {plugin: toy.bus, server: \"" + name + "\"}\nservers:\n  p: {plugin: toy.plain}\n"
		h := startHost(t, file)
		if c.answers {
			eventually(t, "the host answering", func() bool {
				_, err := cl.Status(context.Background(), h.Name())
				return err == nil
			})
			continue
		}
		// The host subscribes while it starts: by now it would answer.
		if _, err := cl.Status(context.Background(), h.Name()); !errors.Is(err, ErrNoResponders) {
			t.Fatalf("host.bus none: %v, want no responders", err)
		}
	}
}
