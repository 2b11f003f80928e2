package scheduler

import (
	"context"
	"testing"

	"github.com/convene/convene/internal/protocol"
)

func graceTerm() *term {
	return &term{ctx: context.Background(), graceDone: make(chan struct{}), expect: map[string]bool{}, down: map[string]bool{}}
}

func liveNode(id string) protocol.NodeInfo {
	return protocol.NodeInfo{Node: id, Room: "r1", Kind: "mcu", State: protocol.NodeUp}
}

// The start-up grace waits for the lists of the nodes RMS listed as live;
// a node RMS says is down meanwhile (a node that froze: it will never
// answer) is no longer waited for, before or after RMS's list came.
func TestGraceWaitsForNoDownNode(t *testing.T) {
	s := &Scheduler{rooms: map[string]string{}}

	t.Run("down after the list", func(t *testing.T) {
		tm := graceTerm()
		s.cur.Store(tm)
		if n := s.expectListed(tm, []protocol.NodeInfo{liveNode("n1"), liveNode("n2")}); n != 2 {
			t.Fatalf("waits for %d lists, want 2", n)
		}
		s.nodeDownInGrace("n1", true)
		if graceOver(tm) {
			t.Fatal("the grace ended while n2 had not reported")
		}
		s.nodeDownInGrace("n2", true)
		if !graceOver(tm) {
			t.Fatal("the grace still waits with every listed node down")
		}
	})

	t.Run("down before the list", func(t *testing.T) {
		tm := graceTerm()
		s.cur.Store(tm)
		s.nodeDownInGrace("n1", true)
		if n := s.expectListed(tm, []protocol.NodeInfo{liveNode("n1")}); n != 0 || !graceOver(tm) {
			t.Fatalf("a list naming only a node RMS said was down since: waits for %d, grace over %v", n, graceOver(tm))
		}
	})

	t.Run("down and up again", func(t *testing.T) {
		tm := graceTerm()
		s.cur.Store(tm)
		s.nodeDownInGrace("n1", true)
		s.nodeDownInGrace("n1", false)
		if n := s.expectListed(tm, []protocol.NodeInfo{liveNode("n1"), {Node: "v1", Kind: "vrs", State: protocol.NodeUp}}); n != 1 || graceOver(tm) {
			t.Fatalf("a node up again is waited for (and a recorder never): waits for %d, grace over %v", n, graceOver(tm))
		}
	})
}
