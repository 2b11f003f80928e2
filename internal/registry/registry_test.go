package registry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

func startBus(t *testing.T) *bus.Bus {
	t.Helper()
	e, err := bus.StartEmbedded(bus.EmbeddedOptions{NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	b, err := bus.Connect(bus.Options{Embedded: e}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRegistry(t *testing.T) {
	b := startBus(t)
	ctx := context.Background()
	resync := make(chan struct{}, 1)
	if _, err := b.Subscribe(protocol.SubjectRegistryResync("p1"), bus.HandlerFunc(func(context.Context, *bus.Msg) { resync <- struct{}{} })); err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{Platform: "p1"}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resync:
	case <-time.After(5 * time.Second):
		t.Fatal("registry did not ask for a resync on start")
	}
	add := func(e164, node, reporter, plat string, kind int, at int64) {
		t.Helper()
		err := b.Publish(protocol.SubjectRegistry("p1"), protocol.RegistryNtf{Type: protocol.UPUConfAddNtf, Reporter: reporter,
			Entry: protocol.RegistryEntry{E164: e164, Kind: kind, Node: node, Platform: plat, UpdatedMs: at}})
		if err != nil {
			t.Fatal(err)
		}
	}
	add("6600001", "n1", "p1", "p1", protocol.EntryInstant, 10)
	add("6600002", "n2", "p1", "p2", protocol.EntryInstant, 10)
	add("6600009", "", "p1", "p1", protocol.EntryTemplate, 10)
	waitFor(t, "three entries", func() bool { return len(r.List(0)) == 3 })

	add("6600001", "n3", "p1", "p1", protocol.EntryInstant, 20)
	add("6600001", "n9", "p1", "p1", protocol.EntryInstant, 15) // late, older
	waitFor(t, "the move to n3", func() bool { e, _ := r.Lookup("6600001"); return e.Node == "n3" })

	var ack protocol.RegistryQueryAck
	if err := b.Call(ctx, protocol.SubjectRegistry("p1"), protocol.RegistryQuery{Type: protocol.UPUQueryReq, E164: "6600001"}, &ack); err != nil {
		t.Fatal(err)
	}
	if ack.Entry.Node != "n3" {
		t.Fatalf("query answered %+v; the late older report must not win", ack.Entry)
	}
	var ne *bus.NackError
	if err := b.Call(ctx, protocol.SubjectRegistry("p1"), protocol.RegistryQuery{Type: protocol.UPUQueryReq, E164: "123"}, nil); !errors.As(err, &ne) || ne.Code != protocol.ErrNotFound {
		t.Fatalf("unknown number: %v", err)
	}
	var list protocol.RegistryListAck
	if err := b.Call(ctx, protocol.SubjectRegistry("p1"), protocol.RegistryQuery{Type: protocol.UPUListReq, Kind: protocol.EntryTemplate}, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Entries) != 1 || list.Entries[0].E164 != "6600009" {
		t.Fatalf("template list = %+v", list.Entries)
	}

	_ = b.Publish(protocol.SubjectRegistry("p1"), protocol.RegistryNtf{Type: protocol.UPUConfDelNtf, Entry: protocol.RegistryEntry{E164: "6600009", Kind: protocol.EntryInstant}})
	_ = b.Publish(protocol.SubjectRegistry("p1"), protocol.RegistryClearNtf{Type: protocol.UPUClearNtf, Reporter: "p1", Platform: "p2"})
	waitFor(t, "the clear of p2's entries", func() bool { _, ok := r.Lookup("6600002"); return !ok })
	if _, ok := r.Lookup("6600009"); !ok {
		t.Fatal("a delete of another kind removed the template")
	}
	if _, ok := r.Lookup("6600001"); !ok {
		t.Fatal("the clear of p2 removed an entry of p1")
	}
}
