package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/convene/convene/internal/protocol"
)

// A SIP node asks the registry where a number runs and RMS where that
// node takes calls, and may do nothing that changes a conference.
func TestSIPNodeAsksRegistryAndRMSOnly(t *testing.T) {
	e := startAuthBus(t)
	internal, err := Connect(Options{Embedded: e}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer internal.Close()
	for _, s := range []string{protocol.SubjectRegistry(testPlatform), protocol.SubjectRMS(testPlatform)} {
		if _, err := internal.Subscribe(s, HandlerFunc(func(_ context.Context, m *Msg) {
			_ = m.Respond(protocol.Header{Type: "ACK"})
		})); err != nil {
			t.Fatal(err)
		}
	}
	if err := internal.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	sip := connectAs(t, e, RoleSIP, "sip-a")
	for _, s := range []string{protocol.SubjectRegistry(testPlatform), protocol.SubjectRMS(testPlatform)} {
		var ack protocol.Header
		if err := sip.Call(context.Background(), s, protocol.Header{Type: protocol.RMSNodeListReq}, &ack); err != nil || ack.Type != "ACK" {
			t.Fatalf("a SIP node's request on %s: %v", s, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	for _, s := range []string{protocol.SubjectCMMAU(testPlatform), protocol.SubjectToNode("n1"), protocol.SubjectRMSNodes(testPlatform)} {
		if err := sip.Call(ctx, s, protocol.Header{Type: "PROBE"}, nil); err == nil {
			t.Fatalf("a SIP node's request on %s was answered", s)
		}
	}
	if err := sip.Flush(context.Background()); !errors.Is(err, ErrDenied) {
		t.Fatalf("Flush after forbidden requests = %v, want ErrDenied", err)
	}
}
