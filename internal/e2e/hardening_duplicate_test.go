package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// The same conference on two nodes at once (000 §9.2): the copy created
// earlier ends, whichever of the two the store counts, and the store counts
// the copy that stays.
func TestDuplicateConferenceOnTwoNodes(t *testing.T) {
	tests := []struct {
		name string
		// second says when the copy on the second node was created,
		// relative to the counted copy's creation.
		second time.Duration
		// moves: the store's record follows the second copy.
		moves bool
	}{
		{name: "the store counts the newer copy", second: -time.Minute, moves: false},
		{name: "the store counts the older copy", second: time.Second, moves: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := hdStart(t, hdOptions{nodes: 2})
			want := e.createAll(4)
			ctx := context.Background()
			var num string
			for n := range want {
				num = n
				break
			}
			c, err := e.st.Store.Conference(ctx, num)
			if err != nil {
				t.Fatal(err)
			}
			var first, second *medianode.Node
			for _, n := range e.st.Nodes {
				if n.ID() == c.Node {
					first = n
				} else {
					second = n
				}
			}
			var counted int64
			for _, h := range first.Conferences() {
				if h.E164 == num {
					counted = h.CreateTime
				}
			}
			if counted == 0 {
				t.Fatalf("%s is not hosted by %s, where the store has it", num, first.ID())
			}
			// Both nodes host it now.
			second.Inject(num, counted+tt.second.Milliseconds())
			if err := second.ReportConfList(); err != nil {
				t.Fatal(err)
			}
			stays, goes := first, second
			if tt.moves {
				stays, goes = second, first
			}
			testkit.Eventually(t, 20*time.Second, testkit.Cond("the older copy to end on "+goes.ID(), func() bool { return !goes.Hosts(num) }))
			if !stays.Hosts(num) {
				t.Fatalf("the newer copy on %s ended too", stays.ID())
			}
			if received(goes, protocol.MAUMCUReleaseConfCmd, num) == 0 {
				t.Fatalf("%s was not told to release the older copy", goes.ID())
			}
			e.exactly("after the duplicate was settled", want)
			got, err := e.client.Conference(ctx, num)
			if err != nil {
				t.Fatal(err)
			}
			if got.Node != stays.ID() || got.State != protocol.StateRunning {
				t.Fatalf("%s is %s on %s; want running on %s", num, got.State, got.Node, stays.ID())
			}
			if tt.moves {
				// The CM and the registry follow it to its new node.
				testkit.Eventually(t, 20*time.Second, testkit.Cond("the registry to follow "+num, func() bool {
					r, err := e.client.Registry(ctx, num)
					return err == nil && r.Node == stays.ID()
				}))
				if !e.st.ActiveScheduler().Controlled(num) {
					t.Fatalf("nobody controls %s after it moved", num)
				}
			}
			// It stays settled through the next conference lists of both.
			for _, n := range e.st.Nodes {
				if err := n.ReportConfList(); err != nil {
					t.Fatal(err)
				}
			}
			e.exactly("after both nodes reported again", want)
			if got, _ := e.st.Store.Conference(ctx, num); got.Node != stays.ID() {
				t.Fatalf("%s went back to %s", num, got.Node)
			}
		})
	}
}
