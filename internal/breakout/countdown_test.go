package breakout_test

import (
	"context"
	"testing"
	"time"

	"github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/protocol"
)

// A stop with a countdown: everyone is told the delay; nobody joins a room
// meanwhile; the rooms end as soon as they are empty, with a final notify
// of delay 0, everyone in the main room.
func TestCountdownEndsWhenRoomsEmpty(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true})
	a := e.connect(in, e164, who{id: 2})
	b := e.connect(in, e164, who{id: 3})
	c := e.connect(in, e164, who{id: 4})
	e.rooms10and20(in, e164, host, []*user{a, b}, nil, c)

	host.send(stop(e164, 1, 30))
	for _, u := range []*user{host, a, b, c} {
		n := decode[protocol.BreakoutRoomsStopNotify](t, u.expect(protocol.BMSBreakoutRoomsStopNotify, nil))
		if n.StatusCode != 0 || n.DelayTime != 30 {
			t.Fatalf("user %d: %+v", u.id, n)
		}
	}
	host.send(move(e164, 1, 4, 0, 10))
	host.expect(protocol.BMSSetUserBreakoutRoomNotify, status(protocol.BreakoutCountdown))
	host.send(stop(e164, 1, 10))
	host.expect(protocol.BMSBreakoutRoomsStopNotify, status(protocol.BreakoutCountdown))
	// The new joiner of the conference learns the countdown.
	late := e.dial(in, e164, who{id: 9})
	late.send(protocol.ConfInfoRequest{Type: protocol.BMSConfInfoRequest, ConfID: e164, UserID: 9})
	if info := decode[protocol.ConfInfoNotify](t, late.expect(protocol.BMSConfInfoNotify, nil)); info.Status != 1 || info.DelayTime == 0 || info.DelayTime > 30 {
		t.Fatalf("info during the countdown: %+v", info)
	}

	a.send(move(e164, 2, 2, 0, 0))
	c.expect(protocol.BMSSetUserBreakoutRoomNotify, nil)
	b.send(move(e164, 3, 3, 0, 0))
	for _, u := range []*user{host, a, b, c} {
		n := decode[protocol.BreakoutRoomsStopNotify](t, u.expect(protocol.BMSBreakoutRoomsStopNotify, nil))
		if n.StatusCode != 0 || n.DelayTime != 0 {
			t.Fatalf("user %d: final notify %+v", u.id, n)
		}
	}
	st, p := e.waitPlan(in, e164)
	if st.Meta.Active || st.Meta.Deadline != 0 || p.Status != 0 {
		t.Fatalf("after the rooms emptied: %+v", st.Meta)
	}
	due, err := e.st.Store.DueBreakoutCountdowns(t.Context(), time.Now().Add(time.Hour).UnixMilli())
	if err != nil || len(due) != 0 {
		t.Fatalf("countdowns still indexed: %v %v", due, err)
	}
}

// A countdown that runs out ends the rooms, on the real clock, never
// before its deadline; stop with delay 0 during a countdown ends them at
// once.
func TestCountdownRunsOut(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true})
	a := e.connect(in, e164, who{id: 2})
	e.rooms10and20(in, e164, host, []*user{a}, nil, a)

	// The service sets the deadline when it takes the stop, after it was
	// sent: the deadline is at least the send time plus the delay.
	sent := time.Now()
	host.send(stop(e164, 1, 1))
	a.expect(protocol.BMSBreakoutRoomsStopNotify, status(0))
	final := a.expect(protocol.BMSBreakoutRoomsStopNotify, func(m breakout.Message) bool {
		return decode[protocol.BreakoutRoomsStopNotify](t, m).DelayTime == 0
	})
	if got, least := final.At.UnixMilli(), sent.UnixMilli()+1000; got < least {
		t.Fatalf("the rooms ended %d ms before the deadline", least-got)
	}
	st, _ := e.waitPlan(in, e164)
	if u := st.Users["i2"]; st.Meta.Active || u.Current != breakout.MainRoom {
		t.Fatalf("after the countdown: active %t, user 2 in %d", st.Meta.Active, u.Current)
	}

	e.rooms10and20(in, e164, host, []*user{a}, nil, a)
	host.send(stop(e164, 1, 60))
	a.expect(protocol.BMSBreakoutRoomsStopNotify, func(m breakout.Message) bool {
		return decode[protocol.BreakoutRoomsStopNotify](t, m).DelayTime == 60
	})
	host.send(stop(e164, 1, 0))
	a.expect(protocol.BMSBreakoutRoomsStopNotify, func(m breakout.Message) bool {
		return decode[protocol.BreakoutRoomsStopNotify](t, m).DelayTime == 0
	})
}

// counting reads a conference's countdown deadline (0: none, or the rooms
// are off).
func counting(t *testing.T, in *instance, e164 string) int64 {
	t.Helper()
	st, _, err := in.svc.Snapshot(context.Background(), e164)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Meta.Active {
		return 0
	}
	return st.Meta.Deadline
}

// notBefore makes an instance look for the end of a countdown with its
// clock just before the deadline, and fails if the rooms ended while the
// clock had not reached it.
func notBefore(t *testing.T, clk *fakeClock, in *instance, e164 string, deadline int64) {
	t.Helper()
	clk.to(time.UnixMilli(deadline).Add(-time.Second))
	in.svc.TestExpire(context.Background(), e164)
	after := clk.now().UnixMilli()
	if got := counting(t, in, e164); got != deadline {
		if after < deadline {
			t.Fatalf("the rooms ended (deadline now %d) with the clock %d ms before the deadline %d", got, deadline-after, deadline)
		}
		// The clock passed the deadline meanwhile (a slow machine): the
		// end was due, and this run shows nothing.
		t.Logf("the clock passed the deadline during the check")
	}
}

// A countdown ends at its deadline on the services' clock: looked at just
// before it, the rooms stay on; once the clock passed it, they end by
// the periodic look, without the instance's own timer.
func TestCountdownEndsAtItsDeadline(t *testing.T) {
	clk := &fakeClock{}
	e := start(t, setup{clock: clk.now})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true})
	a := e.connect(in, e164, who{id: 2})
	e.rooms10and20(in, e164, host, []*user{a}, nil, a)

	host.send(stop(e164, 1, 600))
	a.expect(protocol.BMSBreakoutRoomsStopNotify, status(0))
	deadline := counting(t, in, e164)
	if deadline == 0 {
		t.Fatal("no countdown after a stop with a delay")
	}
	notBefore(t, clk, in, e164, deadline)
	clk.to(time.UnixMilli(deadline))
	final := a.expect(protocol.BMSBreakoutRoomsStopNotify, nil)
	if d := decode[protocol.BreakoutRoomsStopNotify](t, final); d.DelayTime != 0 {
		t.Fatalf("final notify %+v", d)
	}
	st, _ := e.waitPlan(in, e164)
	if u := st.Users["i2"]; st.Meta.Active || u.Current != breakout.MainRoom {
		t.Fatalf("after the countdown: active %t, user 2 in %d", st.Meta.Active, u.Current)
	}
}

// The instance that took the stop dies during the countdown: another one,
// on the same store and bus, ends the rooms at the deadline, not before.
func TestCountdownSurvivesItsInstance(t *testing.T) {
	clk := &fakeClock{}
	e := start(t, setup{redis: true, insts: 2, clock: clk.now})
	a, b := e.insts[0], e.insts[1]
	e164 := e.conference()
	host := e.connect(a, e164, who{id: 1, host: true})
	u2 := e.connect(b, e164, who{id: 2})
	u3 := e.connect(b, e164, who{id: 3})
	e.rooms10and20(a, e164, host, []*user{u2}, []*user{u3}, u2, u3)

	host.send(stop(e164, 1, 600))
	n := u2.expect(protocol.BMSBreakoutRoomsStopNotify, status(0))
	if d := decode[protocol.BreakoutRoomsStopNotify](t, n); d.DelayTime != 600 {
		t.Fatalf("countdown notify %+v", d)
	}
	u3.expect(protocol.BMSBreakoutRoomsStopNotify, status(0))
	deadline := counting(t, b, e164)
	if deadline == 0 {
		t.Fatal("no countdown after a stop with a delay")
	}
	a.kill()
	notBefore(t, clk, b, e164, deadline)
	clk.to(time.UnixMilli(deadline))
	for _, u := range []*user{u2, u3} {
		final := u.expect(protocol.BMSBreakoutRoomsStopNotify, nil)
		if d := decode[protocol.BreakoutRoomsStopNotify](t, final); d.DelayTime != 0 {
			t.Fatalf("user %d: final notify %+v", u.id, d)
		}
	}
	st, _ := e.waitPlan(b, e164)
	if st.Meta.Active || st.Users["i2"].Current != breakout.MainRoom || st.Users["i3"].Current != breakout.MainRoom {
		t.Fatalf("after the countdown: %+v", st.Meta)
	}
}
