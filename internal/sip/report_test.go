package sip

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/convene/convene/internal/sip/digest"
	"github.com/convene/convene/internal/testkit"
)

// A node that dies after a call ended through it and before the call's
// record was written (its recorder's queue dies with its process) loses
// no record: the call stays in the store until its record is written, and
// the other node's sweep reports its end again.
func TestCallEndReportedAgainWhenItsNodeDiesBeforeTheRecord(t *testing.T) {
	lost := newRecorder()
	lost.lose = true
	e := start(t, setup{recA: lost, tune: func(o *Options) { o.ReportGrace = 300 * time.Millisecond }})
	e.subscriber("1001", "pw-1001")
	e.subscriber("2001", "pw-2001")
	callee := newPhone(t, "2001", "pw-2001")
	if res := callee.register(e.a.UDPAddr(), digest.SHA256); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	caller := newPhone(t, "1001", "pw-1001")
	inv, res := caller.call(e.a.UDPAddr(), "2001", sdpVoice)
	if res.StatusCode != 200 {
		t.Fatalf("call answered %d", res.StatusCode)
	}
	if bye := caller.inDialog(sip.BYE, inv, res, e.a.UDPAddr()); bye.StatusCode != 200 {
		t.Fatalf("BYE answered %d", bye.StatusCode)
	}
	id := inv.CallID().Value()
	first := lost.waitEnd(t, id) // node A reported it; its record is never written
	e.a.Kill()
	again := e.rec.waitEnd(t, id)
	if again.Node != "sip-a" || !again.Connected || again.Reason != EndBye || again.Status != 200 ||
		!again.End.Equal(first.End) || again.Caller != "1001" || again.Called != "2001" {
		t.Fatalf("reported again as %+v, first as %+v", again, first)
	}
	// Written now: the call leaves the store, and is not reported again.
	testkit.AwaitWithin(t, 15*time.Second, "the call gone from the store", func() bool {
		_, ok, err := e.st.Store.SIPCall(t.Context(), id)
		return err == nil && !ok
	})
	if _, ok := e.rec.end(t, id); !ok {
		t.Fatal("the end is gone")
	}
}
