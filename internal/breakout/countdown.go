package breakout

import (
	"context"
	"time"
)

// A closing countdown's deadline lives in the store (breakouts/countdown),
// so any instance can end it: the instance that started it sets a timer
// for the deadline, and every instance looks for due countdowns every
// CountdownCheck, which covers an instance that died meanwhile. The
// version check of the store makes exactly one of them end the rooms.

// schedule sets or clears this instance's timer after a change.
func (s *Service) schedule(e164 string, prev, next *State) {
	if prev.Meta.Deadline == next.Meta.Deadline {
		return
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if t := s.timers[e164]; t != nil {
		t.Stop()
		delete(s.timers, e164)
	}
	if !next.counting() || s.down.Load() {
		return
	}
	wait := time.UnixMilli(next.Meta.Deadline).Sub(s.now())
	s.timers[e164] = time.AfterFunc(wait, func() {
		s.tmu.Lock()
		delete(s.timers, e164)
		s.tmu.Unlock()
		s.expire(context.Background(), e164)
	})
}

// expire ends a conference's rooms if their countdown is over.
func (s *Service) expire(ctx context.Context, e164 string) {
	if s.down.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s.exec(ctx, e164, command{cond: "exists", run: func(r rules, st *State) outcome { return r.finishDue(st) }})
}

// countdownLoop ends the due countdowns of every conference.
func (s *Service) countdownLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.CountdownCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due, err := s.store.DueBreakoutCountdowns(ctx, s.now().UnixMilli())
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("due countdowns not read", "err", err)
			}
			continue
		}
		for _, e164 := range due {
			s.expire(ctx, e164)
		}
	}
}
