package resources_test

import (
	"context"
	"testing"
	"time"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

func nodeSIP(t *testing.T, h *harness, id string) string {
	t.Helper()
	var ack protocol.NodeListAck
	if err := h.bus.Call(context.Background(), protocol.SubjectRMS(platform),
		protocol.Header{Type: protocol.RMSNodeListReq}, &ack); err != nil {
		t.Fatal(err)
	}
	for _, n := range ack.Nodes {
		if n.Node == id {
			return n.SIP
		}
	}
	t.Fatalf("node %s is not listed", id)
	return ""
}

// A node's SIP contact, from its registration and then its beats, is in
// the node list SIP nodes route conference calls by.
func TestNodeListCarriesSIPContact(t *testing.T) {
	h := newHarness(t, slow)
	hb := mcu("m-1", "room-1", 0, 10)
	r := reg(hb)
	r.SIP = "sip:127.0.0.1:5071"
	if _, err := h.register(r); err != nil {
		t.Fatal(err)
	}
	if got := nodeSIP(t, h, "m-1"); got != r.SIP {
		t.Fatalf("after registration: contact %q, want %q", got, r.SIP)
	}
	// The node restarted on another port: its next beat says so.
	hb.PID, hb.SIP = "101", "sip:127.0.0.1:5072"
	h.beat(hb)
	testkit.Eventually(h.t, 15*time.Second, testkit.Cond("the new contact", func() bool { return nodeSIP(t, h, "m-1") == hb.SIP }))
}
