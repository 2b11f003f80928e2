package resources_test

import (
	"context"
	"testing"
	"time"

	"github.com/convene/convene/internal/protocol"
)

// A freshly started RMS (a rolling restart, with another RMS of the
// platform still answering) does not answer before it could have heard
// the live nodes: a create is not refused for want of a node that simply
// has not beaten yet, and the node list it gives is whole.
func TestFreshRMSHoldsItsAnswers(t *testing.T) {
	opts := slow // a fresh term of freshCap, 1 s
	for _, tc := range []struct {
		name string
		ask  func(h *harness) (string, bool) // what the answer says; ok when it knows m1
	}{
		{"GET_RES", func(h *harness) (string, bool) {
			ack, err := h.getRes(protocol.GetResReq{Domain: "tenant"})
			if err != nil {
				return err.Error(), false
			}
			return "offer", len(ack.MCU) == 1 && ack.MCU[0].Node == "m1"
		}},
		{"RMS_NODELIST", func(h *harness) (string, bool) {
			var ack protocol.NodeListAck
			if err := h.bus.Call(context.Background(), protocol.SubjectRMS(platform), protocol.Header{Type: protocol.RMSNodeListReq}, &ack); err != nil {
				return err.Error(), false
			}
			return "a list", len(ack.Nodes) == 1 && ack.Nodes[0].Node == "m1"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, opts)
			type answer struct {
				says string
				ok   bool
			}
			done := make(chan answer, 1)
			go func() {
				says, ok := tc.ask(h)
				done <- answer{says, ok}
			}()
			// No node has beaten yet: RMS must not answer as if there were none.
			select {
			case a := <-done:
				t.Fatalf("a fresh RMS that has heard no node yet answered at once: %s", a.says)
			case <-time.After(100 * time.Millisecond):
			}
			h.beat(mcu("m1", "room-1", 0, 10))
			if a := <-done; !a.ok {
				t.Fatalf("after m1 beat, the fresh RMS answered %s without it", a.says)
			}
		})
	}
}
