package host_test

import (
	"context"
	"testing"

	"github.com/convene/convene/internal/host"
)

// Instance reaches the running instance of a server, none while its
// plugin is stopped, and the fresh one after it starts again.
func TestInstance(t *testing.T) {
	f, err := host.Parse("instance.yaml", []byte("host: {name: inst}\nservers:\n  greeter: {plugin: example.greeter}\n"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(f, host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, ok := h.Instance("greeter"); ok {
		t.Fatal("an instance before the host started")
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Stop(ctx)
	first, ok := h.Instance("greeter")
	if _, isGreeter := first.(*greeter); !ok || !isGreeter {
		t.Fatalf("Instance(greeter) = %T, %v", first, ok)
	}
	if _, ok := h.Instance("nobody"); ok {
		t.Fatal("an instance of a server the file does not name")
	}
	if err := h.StopPlugin(ctx, "example.greeter"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.Instance("greeter"); ok {
		t.Fatal("an instance of a stopped plugin")
	}
	if err := h.StartPlugin(ctx, "example.greeter"); err != nil {
		t.Fatal(err)
	}
	if again, ok := h.Instance("greeter"); !ok || again == first {
		t.Fatalf("after a restart: %p (%v), the first was %p", again, ok, first)
	}
}
