package resources

import (
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
)

// The watcher's decisions on a made-up clock: each step acts at t0+at,
// then runs a watcher turn then, and compares the notices it found.

type step struct {
	at   time.Duration
	do   func(s *Service, now time.Time) // optional
	due  time.Duration                   // the turn was due at t0+due; 0: at t0+at
	want string                          // the turn's notices, "; "-separated
	next time.Duration                   // when set, the next turn is due at t0+next
}

func beat(s *Service, now time.Time) {
	s.learn(registration{id: "n1", ip: "ip", pid: "100", room: "room-1", platform: "plat-a",
		kind: KindMCU, capacity: 10, beat: true}, now)
}

func disconnect(cid uint64) func(*Service, time.Time) {
	return func(s *Service, now time.Time) { s.disconnected("n1", cid, "Client Closed", now) }
}

func connect(cid uint64) func(*Service, time.Time) {
	return func(s *Service, _ time.Time) { s.connected("n1", cid) }
}

func forgive(s *Service, now time.Time) { s.forgive(now) }

// backlog makes n node messages wait for the handler from now on.
func backlog(n int) func(*Service, time.Time) {
	return func(s *Service, _ time.Time) { s.backlog = func() int { return n } }
}

// idle is an RMS that is never started: its watcher is driven by hand.
// Interval 100 ms × 3, grace 50 ms: a watcher turn more than 50 ms late
// was starved, a starved spell suspends take-downs for 5 s at most, and
// the watcher sleeps at most 25 ms.
func idle(t *testing.T) *Service {
	t.Helper()
	s, err := New(Options{
		Platform: "plat-a", Rooms: []Room{{Moid: "room-1"}},
		HeartbeatInterval: 100 * time.Millisecond, MissedHeartbeats: 3, DisconnectGrace: 50 * time.Millisecond,
	}, new(bus.Bus), nil) // the connection is never used
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *Service) takeQueue() string {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	var out []string
	for _, n := range s.queue {
		out = append(out, n.State+" "+n.Reason)
	}
	s.queue = nil
	return strings.Join(out, "; ")
}

func TestWatch(t *testing.T) {
	ms := time.Millisecond
	lost := "down " + ReasonConnLost
	cases := []struct {
		name  string
		steps []step
	}{
		{"heartbeat deadline", []step{
			{at: 0, do: beat, want: "up registered", next: 25 * ms},
			{at: 290 * ms, next: 300 * ms},
			{at: 300 * ms, want: "down missed 3 heartbeats"},
			{at: 900 * ms},
		}},
		{"beats push the deadline", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 250 * ms, do: beat},
			{at: 540 * ms, next: 550 * ms},
			{at: 550 * ms, want: "down missed 3 heartbeats"},
		}},
		{"connection lost", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 10 * ms, do: disconnect(5), next: 35 * ms},
			{at: 40 * ms, next: 60 * ms},
			{at: 60 * ms, want: lost},
			{at: 400 * ms},
			{at: 410 * ms, do: beat, want: "up heartbeat resumed"},
		}},
		{"reconnected within the grace", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 10 * ms, do: disconnect(5)},
			{at: 30 * ms, do: connect(6)},
			{at: 100 * ms},
			{at: 300 * ms, want: "down missed 3 heartbeats"},
		}},
		{"beat within the grace", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 10 * ms, do: disconnect(5)},
			{at: 30 * ms, do: beat},
			{at: 100 * ms},
		}},
		{"end of a replaced connection", []step{
			{at: 0, do: connect(5)},
			{at: 0, do: beat, want: "up registered"},
			{at: 5 * ms, do: connect(7)},
			{at: 10 * ms, do: disconnect(5)},
			{at: 100 * ms},
			{at: 110 * ms, do: disconnect(7)},
			{at: 160 * ms, want: lost},
		}},
		{"stale connect does not end the grace", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 10 * ms, do: disconnect(7)},
			{at: 20 * ms, do: connect(5)},
			{at: 60 * ms, want: lost},
		}},
		{"second disconnect does not extend the grace", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 10 * ms, do: disconnect(5)},
			{at: 40 * ms, do: disconnect(6)},
			{at: 60 * ms, want: lost},
		}},
		{"reset", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 250 * ms, do: forgive},
			{at: 540 * ms, next: 550 * ms},
			{at: 550 * ms, want: "down missed 5 heartbeats"},
		}},
		{"reset ends the grace", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 10 * ms, do: disconnect(5)},
			{at: 20 * ms, do: forgive},
			{at: 100 * ms},
			{at: 320 * ms, want: "down missed 3 heartbeats"},
		}},
		{"paused watcher", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 1000 * ms, due: 200 * ms},
			{at: 1290 * ms},
			{at: 1300 * ms, want: "down missed 13 heartbeats"},
		}},
		{"slightly late watcher", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 340 * ms, due: 300 * ms, want: "down missed 3 heartbeats"},
		}},
		{"starved watcher", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 200 * ms, due: 140 * ms},
			{at: 225 * ms},
			{at: 260 * ms, due: 250 * ms},
			// The window runs from the late turn.
			{at: 499 * ms, next: 500 * ms},
			{at: 500 * ms, want: "down missed 5 heartbeats"},
		}},
		{"backlog holds a take-down", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 300 * ms, do: backlog(2), next: 301 * ms},
			{at: 301 * ms, do: backlog(1), next: 302 * ms},
			{at: 302 * ms, do: backlog(0), want: "down missed 3 heartbeats"},
		}},
		{"a beat from the backlog", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 300 * ms, do: backlog(1), next: 301 * ms},
			{at: 301 * ms, do: func(s *Service, now time.Time) { beat(s, now); backlog(0)(s, now) }, next: 326 * ms},
			{at: 601 * ms, want: "down missed 3 heartbeats"},
		}},
		{"backlog that does not drain", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 300 * ms, do: backlog(1), next: 301 * ms},
			{at: 5300 * ms},
			{at: 5301 * ms, want: "down missed 53 heartbeats"},
		}},
		{"lost connection waits for the backlog", []step{
			{at: 0, do: beat, want: "up registered"},
			{at: 10 * ms, do: disconnect(5)},
			{at: 60 * ms, do: backlog(1), next: 61 * ms},
			{at: 61 * ms, do: func(s *Service, now time.Time) { connect(6)(s, now); backlog(0)(s, now) }},
			{at: 300 * ms, want: "down missed 3 heartbeats"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := idle(t)
			t0 := time.Now()
			for i, st := range tc.steps {
				now := t0.Add(st.at)
				if st.do != nil {
					st.do(s, now)
				}
				due := now
				if st.due != 0 {
					due = t0.Add(st.due)
				}
				next := s.watch(now, due)
				if got := s.takeQueue(); got != st.want {
					t.Fatalf("step %d at %s: notices %q, want %q", i, st.at, got, st.want)
				}
				if st.next != 0 && !next.Equal(t0.Add(st.next)) {
					t.Fatalf("step %d at %s: next turn at %s, want %s", i, st.at, next.Sub(t0), st.next)
				}
			}
		})
	}
}

func TestBusReconnectedResetsDeadlines(t *testing.T) {
	s := idle(t)
	t0 := time.Now().Add(-250 * time.Millisecond)
	beat(s, t0)
	s.takeQueue()
	before := time.Now()
	s.BusReconnected()
	// Its beat is 250 ms old, and its deadline 300 ms after the reset.
	if got := s.takeQueue(); got != "" {
		t.Fatalf("notices %q", got)
	}
	if next := s.watch(before.Add(299*time.Millisecond), before.Add(299*time.Millisecond)); !next.After(before.Add(299 * time.Millisecond)) {
		t.Fatalf("next turn at %s", next)
	}
	if got := s.takeQueue(); got != "" {
		t.Fatalf("node went down within a full window of BusReconnected: %q", got)
	}
	after := time.Now()
	s.watch(after.Add(300*time.Millisecond), after.Add(300*time.Millisecond))
	if got := s.takeQueue(); !strings.HasPrefix(got, "down missed") {
		t.Fatalf("node did not go down a window after BusReconnected: %q", got)
	}
	// The node list still reports the node's true last beat.
	if n := s.Nodes()[0]; n.LastBeatMs != t0.UnixMilli() {
		t.Fatalf("last beat %d, want %d", n.LastBeatMs, t0.UnixMilli())
	}
}
