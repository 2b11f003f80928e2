package resources

import (
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
)

// The guard's verdicts on a made-up clock: lag 50 ms, hold 1 s, a spell
// ends after 300 ms without a late turn.
func TestGuardObserve(t *testing.T) {
	ms := time.Millisecond
	type turn struct {
		at, late time.Duration
		starved  bool
		ev       guardEvent
	}
	cases := []struct {
		name  string
		turns []turn
	}{
		{"on time", []turn{
			{at: 0, late: 0}, {at: 25 * ms, late: 50 * ms}, {at: 50 * ms, late: -10 * ms},
		}},
		{"one late turn", []turn{
			{at: 100 * ms, late: 51 * ms, starved: true, ev: guardStarved},
			{at: 125 * ms},
			{at: 399 * ms},
			{at: 400 * ms, ev: guardRecovered},
			{at: 425 * ms},
		}},
		{"a spell goes on while late turns are less than a window apart", []turn{
			{at: 100 * ms, late: 60 * ms, starved: true, ev: guardStarved},
			{at: 350 * ms, late: 0},
			{at: 390 * ms, late: 80 * ms, starved: true},
			{at: 600 * ms, late: 0},
			{at: 690 * ms, late: 0, ev: guardRecovered},
			{at: 700 * ms, late: 80 * ms, starved: true, ev: guardStarved},
		}},
		{"a spell longer than the hold", []turn{
			{at: 0, late: 100 * ms, starved: true, ev: guardStarved},
			{at: 500 * ms, late: 100 * ms, starved: true},
			{at: 1000 * ms, late: 100 * ms, starved: true},
			{at: 1001 * ms, late: 100 * ms, ev: guardHoldOver},
			{at: 1200 * ms, late: 100 * ms},
			{at: 1500 * ms, late: 0, ev: guardRecovered},
			// A new spell is suspended again.
			{at: 1600 * ms, late: 100 * ms, starved: true, ev: guardStarved},
		}},
		{"a pause longer than the hold is one late turn", []turn{
			{at: time.Hour, late: time.Hour, starved: true, ev: guardStarved},
			{at: time.Hour + 300*ms, ev: guardRecovered},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := guard{lag: 50 * ms, hold: time.Second, calm: 300 * ms}
			t0 := time.Now()
			for i, tu := range tc.turns {
				starved, ev := g.observe(t0.Add(tu.at), tu.late)
				if starved != tu.starved || ev != tu.ev {
					t.Fatalf("turn %d at %s, %s late: starved %v, event %d; want %v, %d", i, tu.at, tu.late, starved, ev, tu.starved, tu.ev)
				}
			}
		})
	}
}

func TestGuardWaitBacklog(t *testing.T) {
	ms := time.Millisecond
	g := guard{hold: 100 * ms}
	t0 := time.Now()
	steps := []struct {
		at          time.Duration
		pending     bool
		wait, stuck bool
	}{
		{at: 0, pending: false},
		{at: 1 * ms, pending: true, wait: true},
		{at: 101 * ms, pending: true, wait: true},
		{at: 102 * ms, pending: true, stuck: true},
		{at: 103 * ms, pending: true},
		{at: 104 * ms, pending: false},
		// A new backlog holds again.
		{at: 105 * ms, pending: true, wait: true},
	}
	for i, st := range steps {
		wait, stuck := g.waitBacklog(t0.Add(st.at), st.pending)
		if wait != st.wait || stuck != st.stuck {
			t.Fatalf("step %d at %s: wait %v, stuck %v; want %v, %v", i, st.at, wait, stuck, st.wait, st.stuck)
		}
	}
}

// A watcher starved without end still finds a frozen node: once the spell
// outlasted the hold, within a window of the last turn that forgave.
func TestStarvedSpellIsBounded(t *testing.T) {
	ms := time.Millisecond
	s := idle(t) // 100 ms × 3, hold 5 s
	t0 := time.Now()
	beat(s, t0)
	s.takeQueue()
	var down time.Duration
	for at := 100 * ms; at <= 10*time.Second && down == 0; at += 100 * ms {
		now := t0.Add(at)
		s.watch(now, now.Add(-100*ms)) // every turn 100 ms late
		if got := s.takeQueue(); got != "" {
			down = at
		}
	}
	// The spell began at 100 ms, forgave until 5.1 s, and the window from
	// then ends at 5.4 s.
	if down != 5400*ms {
		t.Fatalf("frozen node down at %s of a starved spell, want 5.4s", down)
	}
}

// With the default settings a node that stops beating is down within a
// second of its last beat, even when every watcher turn is as late as can
// be without the process counting as starved.
func TestDefaultsFindAFrozenNodeWithinASecond(t *testing.T) {
	s, err := New(Options{Platform: "plat-a", Rooms: []Room{{Moid: "room-1"}}}, new(bus.Bus), nil)
	if err != nil {
		t.Fatal(err)
	}
	late := s.opts.OverloadLag
	t0 := time.Now()
	// It beats for a while, then freezes just after a beat.
	var last time.Time
	for at := time.Duration(0); at <= 2*time.Second; at += s.opts.HeartbeatInterval {
		last = t0.Add(at)
		beat(s, last)
	}
	s.takeQueue()
	due := last
	for now := due.Add(late); now.Sub(last) < 10*time.Second; now = due.Add(late) {
		due = s.watch(now, due)
		if got := s.takeQueue(); got != "" {
			if after := now.Sub(last); after > time.Second {
				t.Fatalf("frozen node down %s after its last beat (%s); want within 1s", after, got)
			}
			return
		}
	}
	t.Fatal("frozen node never went down")
}
