package scheduler

import (
	"testing"

	"github.com/convene/convene/internal/protocol"
)

func TestLoadsPickSpreadsEvenly(t *testing.T) {
	l := newLoads()
	cands := []protocol.Server{{Node: "a"}, {Node: "b"}, {Node: "c"}}
	for range 10 {
		if _, ok := l.pick(cands); !ok {
			t.Fatal("no pick")
		}
	}
	if a, b, c := l.get("a"), l.get("b"), l.get("c"); a != 4 || b != 3 || c != 3 {
		t.Fatalf("loads a=%d b=%d c=%d; want 4 3 3 (ties go to the earliest)", a, b, c)
	}
	l.add("b", -3)
	if got, _ := l.pick(cands); got.Node != "b" {
		t.Fatalf("picked %s, want the emptied b", got.Node)
	}
	if l.total() != 8 {
		t.Fatalf("total = %d", l.total())
	}
	if _, ok := l.pick(nil); ok {
		t.Fatal("picked from no candidates")
	}
}

func TestLoadsRespectCapacityAndAvoid(t *testing.T) {
	l := newLoads()
	cands := []protocol.Server{{Node: "a", Capacity: 1}, {Node: "b", Capacity: 5}}
	if got, _ := l.pick(cands); got.Node != "a" {
		t.Fatalf("first pick %s", got.Node)
	}
	if got, _ := l.pick(cands); got.Node != "b" {
		t.Fatalf("a is full, picked %s", got.Node)
	}
	if got, _ := l.pickAvoiding(cands, "b"); got.Node != "b" {
		t.Fatalf("b is the only one with room, picked %s", got.Node)
	}
	l.add("a", -1)
	if got, _ := l.pickAvoiding(cands, "a"); got.Node != "b" {
		t.Fatalf("avoiding a, picked %s", got.Node)
	}
	full := []protocol.Server{{Node: "c", Capacity: 1}}
	l.pick(full)
	if _, ok := l.pick(full); ok {
		t.Fatal("picked a full node")
	}
}

func TestLoadsPassOverSilentNodes(t *testing.T) {
	l := newLoads()
	cands := []protocol.Server{{Node: "a"}, {Node: "b"}, {Node: "c"}}
	heard, first := l.silence("a")
	if !first {
		t.Fatal("a was silent before")
	}
	if _, again := l.silence("a"); again {
		t.Fatal("silencing a twice started two probes")
	}
	for range 6 {
		if got, _ := l.pick(cands); got.Node == "a" {
			t.Fatal("picked the silent node")
		}
	}
	// The second try of a create that b failed: neither b nor silent a.
	if got, _ := l.pickOther(cands, "b"); got.Node != "c" {
		t.Fatalf("second try picked %s, want c", got.Node)
	}
	// Avoiding c for a restore with only c and silent a offered: c, as the
	// only one that answers.
	if got, _ := l.pickAvoiding([]protocol.Server{{Node: "a"}, {Node: "c"}}, "c"); got.Node != "c" {
		t.Fatalf("picked %s", got.Node)
	}
	if _, ok := l.pickOther([]protocol.Server{{Node: "a"}, {Node: "b"}}, "b"); ok {
		t.Fatal("a second try went to the silent node or back to the one that failed")
	}
	if !l.heard("a") {
		t.Fatal("a was not silent")
	}
	select {
	case <-heard:
	default:
		t.Fatal("the probe was not told a answered")
	}
	if got, _ := l.pick(cands); got.Node != "a" {
		t.Fatalf("a answers again and is the least loaded; picked %s", got.Node)
	}
}
