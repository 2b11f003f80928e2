package registry

import (
	"context"
	"errors"
	"testing"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// A second Start is refused and subscribes nothing more, so that after
// Shutdown nobody answers for the registry; Shutdown is safe to repeat.
func TestLifecycle(t *testing.T) {
	_, b := testkit.Bus(t)
	ctx := context.Background()
	r, err := New(Options{Platform: "p1"}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ready() {
		t.Fatal("ready before Start")
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !r.Ready() {
		t.Fatal("not ready after Start")
	}
	if err := r.Start(ctx); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v; want ErrStarted", err)
	}
	query := protocol.RegistryQuery{Type: protocol.UPUListReq}
	var list protocol.RegistryListAck
	if err := b.Call(ctx, protocol.SubjectRegistry("p1"), query, &list); err != nil {
		t.Fatalf("list while serving: %v", err)
	}
	for range 2 {
		if err := r.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
	if r.Ready() {
		t.Fatal("ready after Shutdown")
	}
	if err := b.Call(ctx, protocol.SubjectRegistry("p1"), query, &list); !errors.Is(err, bus.ErrNoResponders) {
		t.Fatalf("list after Shutdown: %v; want no responders", err)
	}
}
