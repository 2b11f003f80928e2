package platform

import (
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// TestListDoesNotUndoANewerNotice: a list asked for before a notice
// arrives may be answered after it; the notice is newer and wins.
func TestListDoesNotUndoANewerNotice(t *testing.T) {
	emb, err := bus.StartEmbedded(bus.EmbeddedOptions{NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	b, err := bus.Connect(bus.Options{Embedded: emb}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	s, err := New(Options{Platform: "p", Rooms: []Room{{Moid: "r1"}}}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	up := protocol.NodeInfo{Node: "m1", Room: "r1", Kind: kindMCU, State: protocol.NodeUp}
	s.applyNodeList([]protocol.NodeInfo{up}, s.gen, now)

	asked := s.gen
	ts, _ := s.applyNotice(protocol.NodeStateNtf{Node: "m1", Room: "r1", State: protocol.NodeDown}, now)
	if len(ts) != 1 || ts[0].state != protocol.RoomAbnormal {
		t.Fatalf("the notice's transitions: %+v", ts)
	}
	ts, _ = s.applyNodeList([]protocol.NodeInfo{up}, asked, now)
	if len(ts) != 0 || s.Rooms()[0].State != protocol.RoomAbnormal || s.Rooms()[0].LiveNodes != 0 {
		t.Fatalf("the older list undid the notice: %+v, rooms %+v", ts, s.Rooms())
	}
	// A list asked for after the notice is newer, and applies.
	ts, _ = s.applyNodeList([]protocol.NodeInfo{up}, s.gen, now)
	if len(ts) != 1 || ts[0].state != protocol.RoomNormal {
		t.Fatalf("a newer list: %+v", ts)
	}
}
