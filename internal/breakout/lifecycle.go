package breakout

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// Breakout rooms live and die with their conference: the scheduler's
// notifications to the CM (meeting.mccntf) say when a conference ended
// (its breakout state goes, its clients are told and disconnected) and
// when it runs on another node after a restore (the whole audio plan goes
// to the new node). A periodic sweep catches what a missed notification
// would leave behind, and takes the users of dead instances out of their
// conferences.

// onConfNtf handles the scheduler's notifications.
func (s *Service) onConfNtf(ctx context.Context, m *bus.Msg) {
	switch m.Type {
	case protocol.MAUReleaseConfNtf, protocol.MAUConfStateNtf:
	default:
		return
	}
	var ntf protocol.ConfStateNtf
	if err := m.Decode(&ntf); err != nil || ntf.E164 == "" {
		return
	}
	switch {
	case m.Type == protocol.MAUReleaseConfNtf:
		s.ended(ntf.E164, false)
	case ntf.State == protocol.StateRunning && ntf.Node != "":
		if s.holds(ntf.E164) {
			s.moved(ctx, ntf.E164, ntf.Node)
		} else {
			s.moves.add(ntf.E164, ntf.Node)
		}
	}
}

// deleteState removes an ended conference's breakout state from the store.
func (s *Service) deleteState(e164 string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.DeleteBreakout(ctx, e164); err != nil {
		s.log.Warn("breakout state of an ended conference not removed", "e164", e164, "err", err)
	}
}

// confQueue gathers conferences heard on the bus that this instance does
// not hold: those heard running on a node (moves), or ended (ends). Most
// never used breakout rooms: a restore or a wave of ends asks the store
// which have breakout state in a few commands (WithBreakout), not one
// read or script each, and only those are acted on. The sweep finds a
// move or an end that was missed.
type confQueue struct {
	mu      sync.Mutex
	pending map[string]string // e164 -> the node it runs on (moves)
	kick    chan struct{}
}

func (q *confQueue) init() { q.kick = make(chan struct{}, 1) }

// add queues a conference and its node; a later notice of the same
// conference replaces the node.
func (q *confQueue) add(e164, node string) {
	q.mu.Lock()
	if q.pending == nil {
		q.pending = map[string]string{}
	}
	q.pending[e164] = node
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// take empties the queue.
func (q *confQueue) take() map[string]string {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pending
	q.pending = nil
	return p
}

// drain hands what q gathered to f whenever something is queued, until
// ctx ends: moveLoop and endLoop.
func drain(ctx context.Context, q *confQueue, f func(pending map[string]string)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.kick:
		}
		f(q.take())
	}
}

// moveLoop looks at the queued moved conferences.
func (s *Service) moveLoop(ctx context.Context) {
	drain(ctx, &s.moves, func(p map[string]string) { s.movedMany(ctx, p) })
}

// endLoop removes the breakout state of the queued ended conferences.
func (s *Service) endLoop(ctx context.Context) {
	drain(ctx, &s.ends, func(p map[string]string) {
		s.forEachWithBreakout(ctx, p, "ended", func(e164, _ string) { s.deleteState(e164) })
	})
}

// movedMany runs moved for the queued conferences that have breakout
// state.
func (s *Service) movedMany(ctx context.Context, pending map[string]string) {
	s.forEachWithBreakout(ctx, pending, "moved", func(e164, node string) { s.moved(ctx, e164, node) })
}

// forEachWithBreakout calls f for the pending conferences that have
// breakout state, by the store's index. Should the index not answer, it
// calls f for each: f must be right for a conference without state too.
func (s *Service) forEachWithBreakout(ctx context.Context, pending map[string]string, what string, f func(e164, node string)) {
	if len(pending) == 0 {
		return
	}
	e164s := make([]string, 0, len(pending))
	for e := range pending {
		e164s = append(e164s, e)
	}
	with, err := s.store.WithBreakout(ctx, e164s)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("breakout index not read; each conference is looked at by itself", "what", what, "conferences", len(e164s), "err", err)
		for e, node := range pending {
			f(e, node)
		}
		return
	}
	for e := range with {
		f(e, pending[e])
	}
}

// ended removes an ended conference's breakout state and disconnects its
// clients, here and (when tell) on every instance.
//
// The end of a conference this instance does not hold, heard on the bus,
// is queued: most conferences never used breakout rooms, and the queue
// asks the store's index which did, in a few commands, before it removes
// their state (endLoop).
func (s *Service) ended(e164 string, tell bool) {
	if tell || s.holds(e164) {
		s.deleteState(e164)
	} else {
		s.ends.add(e164, "")
	}
	s.forget(e164)
	s.tmu.Lock()
	if t := s.timers[e164]; t != nil {
		t.Stop()
		delete(s.timers, e164)
	}
	s.tmu.Unlock()
	s.hub.endConf(e164)
	if tell {
		if err := s.bus.Publish(protocol.SubjectBreakout(e164), fanout{Type: protocol.BMSFanout, E164: e164, End: true}); err != nil {
			s.log.Warn("conference end not told to the other instances", "e164", e164, "err", err)
		}
	}
}

// moved sends the whole plan to the node a conference now runs on. Most
// conferences never use breakout rooms: one this instance does not hold,
// whose stored head says it has no breakout state, is left alone, neither
// loaded nor cached (a restore of many conferences costs one small read
// each).
func (s *Service) moved(ctx context.Context, e164, node string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if !s.holds(e164) {
		if h, err := s.store.BreakoutHead(ctx, e164); err == nil && h.Version == 0 {
			return
		}
	}
	s.exec(ctx, e164, command{cond: "exists", run: func(_ rules, st *State) outcome {
		if st.Version == 0 || st.Meta.Node == node {
			return outcome{}
		}
		st.Meta.Node = node
		return outcome{full: true}
	}})
}

// sweepLoop beats and sweeps every SweepInterval.
func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("breakout sweep failed", "err", err)
		}
	}
}

// sweep beats, removes the records of tickets past any use, removes the
// breakout state of conferences that ended unnoticed, sends the plan to a
// node nobody told, and takes the users of dead instances out of their
// conferences.
func (s *Service) sweep(ctx context.Context) error {
	now := s.now().UnixMilli()
	if err := s.store.BeatBreakoutInstance(ctx, s.opts.Instance, now); err != nil {
		return err
	}
	if _, err := s.store.ForgetTickets(ctx, now, 1000); err != nil {
		s.log.Warn("records of used tickets not removed", "err", err)
	}
	e164s, err := s.store.BreakoutConferences(ctx)
	if err != nil {
		return err
	}
	confs, err := s.store.Brief(ctx, e164s)
	if err != nil {
		return err
	}
	var live []string
	for _, e := range e164s {
		c, ok := confs[e]
		if !ok {
			s.ended(e, true)
			continue
		}
		live = append(live, e)
		h, err := s.store.BreakoutHead(ctx, e)
		if err != nil {
			return err
		}
		switch {
		case c.State == protocol.StateRunning && c.Node != "" && h.Version > 0 && h.Node != c.Node:
			// Nobody told us the conference moved.
			s.moved(ctx, e, c.Node)
		case h.Version > h.Sent && now-h.Updated >= 2*s.opts.SweepInterval.Milliseconds():
			s.repair(ctx, e, h.Version)
		}
	}
	beats, err := s.store.BreakoutInstances(ctx)
	if err != nil {
		return err
	}
	var dead []string
	for inst, at := range beats {
		if inst != s.opts.Instance && at < now-s.opts.InstanceTTL.Milliseconds() {
			dead = append(dead, inst)
		}
	}
	if len(dead) == 0 {
		return nil
	}
	for _, e := range live {
		s.exec(ctx, e, command{cond: "exists", run: func(r rules, st *State) outcome {
			for _, u := range st.Users {
				if u.Online() && ofInstance(u.Session, dead, beats) {
					r.leave(st, u.Session)
				}
			}
			return outcome{}
		}})
	}
	for _, inst := range dead {
		if err := s.store.ForgetBreakoutInstance(ctx, inst); err != nil {
			return err
		}
	}
	return nil
}

// repair sends the whole plan again when the last change of a conference
// never reached its node (the instance that made it died before sending)
// and nothing changed since for two sweeps.
func (s *Service) repair(ctx context.Context, e164 string, version int64) {
	err := s.read(ctx, e164, func(st *State, p *Plan) {
		if st.Version == version && st.Meta.Node != "" {
			s.log.Info("sending the whole breakout plan again: its last change did not reach the node", "e164", e164, "version", version, "node", st.Meta.Node)
			s.out.push(e164, st.Meta.Node, st.Version, p, Full(p))
		}
	})
	if err != nil {
		s.log.Warn("breakout plan not repaired", "e164", e164, "err", err)
	}
}

// ofInstance reports whether a session belongs to a dead instance, or to
// one that is not in the beat index at all (it shut down, or its beat was
// forgotten).
func ofInstance(session string, dead []string, beats map[string]int64) bool {
	inst, _, _ := strings.Cut(session, "/")
	if _, known := beats[inst]; !known {
		return true
	}
	for _, d := range dead {
		if d == inst {
			return true
		}
	}
	return false
}
