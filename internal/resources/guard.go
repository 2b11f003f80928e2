package resources

import "time"

// The overload guard keeps RMS from taking healthy nodes down when the
// fault is its own: heartbeats that RMS has not read yet cannot be told
// from heartbeats that were never sent.
//
// Two signs say RMS is behind. Its process is starved of CPU when the
// watcher's timer fires more than Options.OverloadLag late: then the
// beats on their way (through the bus, its connection, the handler) are
// late as well, so every node gets a fresh heartbeat window from that
// turn, and take-downs stay suspended until a window passes without
// another late turn. And its node messages are backlogged when beats
// already received wait for the serial handler (or are in it): then a
// take-down waits until they are handled, and is decided on what they
// said.
//
// Neither holds take-downs for ever. A starved spell (late turns less than
// a window apart) or a backlog that lasts longer than Options.OverloadHold
// no longer suspends them, so a frozen node is found within
// OverloadHold + a heartbeat window of its last beat however loaded the
// machine, and within a window and the timer's latency when it is not.

// guardEvent is what the watcher logs after a turn.
type guardEvent int

const (
	guardQuiet     guardEvent = iota
	guardStarved              // a starved spell began
	guardRecovered            // a spell ended: a whole window without a late turn
	guardHoldOver             // a spell outlasted the hold: take-downs resume
)

// guard holds the overload guard's state. Only the watcher uses it.
type guard struct {
	lag  time.Duration // a turn this late was starved
	hold time.Duration // the longest a spell or a backlog suspends take-downs
	calm time.Duration // a spell ends after this long without a late turn

	spell   time.Time     // when the current spell began; zero: none
	last    time.Time     // the spell's last late turn
	worst   time.Duration // the spell's latest turn
	length  time.Duration // how long the last ended spell lasted
	over    bool          // the spell outlasted hold
	backlog time.Time     // when the current backlog was first seen; zero: none
	stuck   bool          // the current backlog outlasted hold

	// extra, when set, is lag the timer does not show, added to every
	// turn's: tests stand in a starved machine with it.
	extra func() time.Duration
}

// observe records a watcher turn at now that came late after its due
// time, and reports whether the process is starved: take-downs are
// suspended and every node gets a fresh window from now.
func (g *guard) observe(now time.Time, late time.Duration) (starved bool, ev guardEvent) {
	if late <= g.lag {
		if !g.spell.IsZero() && now.Sub(g.last) >= g.calm {
			g.length = g.last.Sub(g.spell)
			g.spell, g.over = time.Time{}, false
			return false, guardRecovered
		}
		return false, guardQuiet
	}
	if g.spell.IsZero() {
		g.spell, g.last, g.worst = now, now, late
		return true, guardStarved
	}
	g.last, g.worst = now, max(g.worst, late)
	if now.Sub(g.spell) <= g.hold {
		return true, guardQuiet
	}
	if !g.over {
		g.over = true
		return false, guardHoldOver
	}
	return false, guardQuiet
}

// waitBacklog reports whether take-downs due at now wait because node
// messages are pending: true until they were handled, or until a backlog
// lasted longer than the hold; stuck is true the first time one did.
func (g *guard) waitBacklog(now time.Time, pending bool) (wait, stuck bool) {
	if !pending {
		g.backlog, g.stuck = time.Time{}, false
		return false, false
	}
	if g.backlog.IsZero() {
		g.backlog = now
	}
	if now.Sub(g.backlog) <= g.hold {
		return true, false
	}
	stuck = !g.stuck
	g.stuck = true
	return false, stuck
}
