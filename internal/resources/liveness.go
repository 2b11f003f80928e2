package resources

import (
	"fmt"
	"time"

	"github.com/convene/convene/internal/protocol"
)

// A node has two deadlines while it is up: its heartbeat deadline,
// HeartbeatInterval × MissedHeartbeats after its last beat (or after the
// last reset, whichever is later), and, while its bus connection is gone,
// the end of its grace. The watcher sleeps until the earliest of them, so
// a node is found down within a timer's latency of its deadline, and never
// longer than a quarter interval, so that how late it wakes measures how
// starved the process is (see guard).

// backlogPoll is how often the watcher looks again at a backlog of node
// messages that holds a take-down.
const backlogPoll = time.Millisecond

// watchLoop takes down nodes whose deadline passed.
func (s *Service) watchLoop() {
	due := time.Now().Add(s.period)
	t := time.NewTimer(s.period)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.rearm:
		case <-t.C:
		}
		now := time.Now()
		due = s.watch(now, due)
		t.Reset(due.Sub(now))
	}
}

// watch is one turn of the watcher, woken at now for a turn that was due
// at due; it returns when the next turn is due. A turn much later than due
// means this process (or at least the watcher) was starved, and with it,
// most likely, the handling of heartbeats: rather than take down every
// node whose beats are still on their way, it gives them all a fresh
// window (see guard).
func (s *Service) watch(now, due time.Time) time.Time {
	late := now.Sub(due)
	if s.guard.extra != nil {
		late += s.guard.extra()
	}
	starved, ev := s.guard.observe(now, late)
	switch ev {
	case guardStarved:
		s.log.Warn("rms is starved of CPU (or was paused): its liveness check ran late and heartbeats may be waiting unread; "+
			"no node is taken down until it catches up, and every node gets a fresh heartbeat window",
			"late", late.Round(time.Millisecond), "overload_lag", s.opts.OverloadLag, "window", s.deadline)
	case guardRecovered:
		s.log.Info("rms caught up: its liveness check runs on time again; nodes go down on their heartbeat deadlines",
			"starved_for", s.guard.length.Round(time.Millisecond), "worst_late", s.guard.worst.Round(time.Millisecond))
	case guardHoldOver:
		s.log.Warn("rms has been starved of CPU for longer than the overload hold: nodes go down on their heartbeat deadlines again; "+
			"give the process more CPU or raise rms.overload_hold",
			"hold", s.opts.OverloadHold, "worst_late", s.guard.worst.Round(time.Millisecond))
	}
	if starved {
		s.forgive(now)
		return now.Add(s.period)
	}
	// The grace relies on hearing the reconnection; a connection that is
	// down now may have missed it, so heartbeats decide instead.
	eventsUp := s.opts.Events == nil || s.opts.Events.Connected()
	return s.sweep(now, eventsUp)
}

// BusReconnected tells RMS that its own bus connection came back: the
// heartbeats sent meanwhile were lost, so every node gets a full heartbeat
// window from now, and connection events heard before are no longer
// trusted (pending graces end; heartbeats decide). Call it from the bus
// connection's OnReconnect, for the Events connection too.
func (s *Service) BusReconnected() {
	s.forgive(time.Now())
	s.log.Info("rms bus reconnected: every node gets a fresh heartbeat window", "window", s.deadline)
}

// forgive makes every heartbeat deadline run from now and ends the graces.
// Last-beat times stay as they were: the node list reports true beats.
func (s *Service) forgive(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.After(s.resetAt) {
		s.resetAt = now
	}
	for _, n := range s.order {
		n.graceUntil = time.Time{}
	}
}

// dueAt is when n goes down unless it beats (or reconnects) first. The
// caller holds mu and knows n is up.
func (s *Service) dueAt(n *node) time.Time {
	from := n.lastBeat
	if s.resetAt.After(from) {
		from = s.resetAt
	}
	due := from.Add(s.deadline)
	if !n.graceUntil.IsZero() && n.graceUntil.Before(due) {
		due = n.graceUntil
	}
	return due
}

// scan reports whether a node's deadline passed at now and when the next
// turn is due. The caller holds mu, for reading at least.
func (s *Service) scan(now time.Time) (next time.Time, expired bool) {
	next = now.Add(s.period)
	for _, n := range s.order {
		if !n.up {
			continue
		}
		due := s.dueAt(n)
		if !due.After(now) {
			expired = true
		} else if due.Before(next) {
			next = due
		}
	}
	return next, expired
}

// sweep takes down the nodes whose deadline passed at now, in table order,
// and returns when the next turn is due. Without eventsUp, expired graces
// are dropped instead.
func (s *Service) sweep(now time.Time, eventsUp bool) time.Time {
	// Most turns find nothing: look under the read lock first, so that
	// offers are not held up.
	s.mu.RLock()
	next, expired := s.scan(now)
	s.mu.RUnlock()
	// A beat that was received but not yet handled would save its node:
	// wait for the node messages in hand, then decide on what they said.
	pending := expired && s.backlog != nil && s.backlog() > 0
	wait, stuck := s.guard.waitBacklog(now, pending)
	if stuck {
		s.log.Warn("rms node messages have been backlogged for longer than the overload hold: nodes go down on their heartbeat deadlines again",
			"pending", s.backlog(), "hold", s.opts.OverloadHold)
	}
	if !expired {
		return next
	}
	if wait {
		return now.Add(backlogPoll)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.order {
		if !n.up || s.dueAt(n).After(now) {
			continue
		}
		if !n.graceUntil.IsZero() && !n.graceUntil.After(now) {
			n.graceUntil = time.Time{}
			if eventsUp {
				n.up = false
				s.enqueue(n.notice(protocol.NodeDown, ReasonConnLost))
				continue
			}
			if s.dueAt(n).After(now) {
				continue // its heartbeats decide
			}
		}
		n.up, n.graceUntil = false, time.Time{}
		missed := int(now.Sub(n.lastBeat) / s.opts.HeartbeatInterval)
		s.enqueue(n.notice(protocol.NodeDown, fmt.Sprintf("missed %d heartbeats", missed)))
	}
	next, _ = s.scan(now)
	return next
}
