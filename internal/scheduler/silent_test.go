package scheduler

import (
	"testing"
	"time"
)

func TestLetGoesRemembersWhatANodeWasToldToRelease(t *testing.T) {
	var g letGoes
	if g.told("a", "5100001") {
		t.Fatal("told before anything was noted")
	}
	g.note("a", "5100001")
	if !g.told("a", "5100001") || g.told("b", "5100001") || g.told("a", "5100002") {
		t.Fatal("the mark is not per node and number")
	}
	g.forget("a", "5100001")
	if g.told("a", "5100001") {
		t.Fatal("a create or restore on the node did not clear the mark")
	}
	g.note("a", "5100003")
	g.at["a/5100003"] = time.Now().Add(-letGoMemory)
	if g.told("a", "5100003") {
		t.Fatal("a mark older than letGoMemory still counts")
	}
	g.prune()
	if len(g.at) != 0 {
		t.Fatalf("prune left %v", g.at)
	}
}
