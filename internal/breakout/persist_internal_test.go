package breakout

import "testing"

// A state never stored is written only when a command changed it: a
// command that leaves it as it was (a conference without breakout rooms
// moving to another node) writes nothing; one that changes it writes the
// whole meta.
func TestAnUnchangedNewStateIsNotWritten(t *testing.T) {
	prev := newState("5100001")
	next := prev.Clone()
	if ch, changed, err := encodeChange(prev, next, "exists", 1); err != nil || changed {
		t.Fatalf("an untouched new state: changed %v (%v), change %+v", changed, err, ch)
	}
	next.Meta.Node = "node-2"
	ch, changed, err := encodeChange(prev, next, "exists", 1)
	if err != nil || !changed || ch.Meta == nil || ch.Node != "node-2" {
		t.Fatalf("a new state with its node set: changed %v (%v), change %+v", changed, err, ch)
	}
}
