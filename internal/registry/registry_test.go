package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

func TestRegistry(t *testing.T) {
	_, b := testkit.Bus(t)
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
	testkit.Eventually(t, testkit.Wait, testkit.Cond("three entries", func() bool { return len(r.List(0)) == 3 }))

	add("6600001", "n3", "p1", "p1", protocol.EntryInstant, 20)
	add("6600001", "n9", "p1", "p1", protocol.EntryInstant, 15) // late, older
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the move to n3", func() bool { e, _ := r.Lookup("6600001"); return e.Node == "n3" }))

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
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the clear of p2's entries", func() bool { _, ok := r.Lookup("6600002"); return !ok }))
	if _, ok := r.Lookup("6600009"); !ok {
		t.Fatal("a delete of another kind removed the template")
	}
	if _, ok := r.Lookup("6600001"); !ok {
		t.Fatal("the clear of p2 removed an entry of p1")
	}
}

// A booked number keeps its booking while a conference of that number
// runs: a lookup answers the conference, and the booking again once the
// conference ended. A backup's registry forgets a recovered master's
// bookings, keeping the conferences it still runs and what others
// reported.
func TestBookingsBesideRunningConferences(t *testing.T) {
	_, b := testkit.Bus(t)
	ctx := context.Background()
	r, err := New(Options{Platform: "pb"}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	send := func(v any) {
		t.Helper()
		if err := b.Publish(protocol.SubjectRegistry("pb"), v); err != nil {
			t.Fatal(err)
		}
	}
	add := func(e164 string, kind int, reporter, source, node string) {
		send(protocol.RegistryNtf{Type: protocol.UPUConfAddNtf, Reporter: reporter, Entry: protocol.RegistryEntry{
			E164: e164, Kind: kind, Platform: source, RealPlatform: reporter, Node: node, UpdatedMs: time.Now().UnixMilli()}})
	}
	// pb reports pa's bookings (a failover) and one of its own.
	add("5100001", protocol.EntryReserved, "pb", "pa", "")
	add("5100002", protocol.EntryVirtual, "pb", "pa", "")
	add("5100003", protocol.EntryTemplate, "pb", "pa", "")
	add("5200001", protocol.EntryVirtual, "pb", "pb", "")
	testkit.Eventually(t, testkit.Wait, testkit.Cond("four bookings", func() bool { return len(r.List(0)) == 4 }))

	// The scheduled conference starts: on pb's node.
	add("5100001", protocol.EntryInstant, "pb", "pa", "b-1")
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the conference of the booked number", func() bool { e, _ := r.Lookup("5100001"); return e.Kind == protocol.EntryInstant }))
	var ack protocol.RegistryQueryAck
	if err := b.Call(ctx, protocol.SubjectRegistry("pb"), protocol.RegistryQuery{Type: protocol.UPUQueryReq, E164: "5100001", Kind: protocol.EntryReserved}, &ack); err != nil || ack.Entry.Kind != protocol.EntryReserved {
		t.Fatalf("the booking of a running conference's number: %+v, %v", ack.Entry, err)
	}
	send(protocol.RegistryNtf{Type: protocol.UPUConfDelNtf, Reporter: "pb", Entry: protocol.RegistryEntry{E164: "5100001", Kind: protocol.EntryInstant}})
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the conference's end", func() bool { e, ok := r.Lookup("5100001"); return ok && e.Kind == protocol.EntryReserved }))

	// A call to the virtual room goes to the real platform.
	if err := b.Call(ctx, protocol.SubjectRegistry("pb"), protocol.RegistryQuery{Type: protocol.UPUQueryReq, E164: "5100002"}, &ack); err != nil || ack.Entry.RealPlatform != "pb" || ack.Entry.Platform != "pa" {
		t.Fatalf("the virtual room: %+v, %v", ack.Entry, err)
	}

	// pa recovers: pb forgets pa's bookings, not the conference of pa's
	// it still runs, nor its own booking.
	add("5100009", protocol.EntryInstant, "pb", "pa", "b-2")
	send(protocol.RegistryClearNtf{Type: protocol.UPUClearBookingsNtf, Reporter: "pb", Platform: "pa"})
	testkit.Eventually(t, testkit.Wait, testkit.Cond("pa's bookings forgotten", func() bool { _, ok := r.Lookup("5100002"); return !ok }))
	var left []string
	for _, e := range r.List(0) {
		left = append(left, fmt.Sprintf("%s/%d", e.E164, e.Kind))
	}
	if want := []string{"5100009/1", "5200001/4"}; !slices.Equal(left, want) {
		t.Fatalf("left %v, want %v", left, want)
	}
}
