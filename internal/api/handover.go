package api

import (
	"context"
	"errors"
	"time"

	"github.com/convene/convene/internal/bus"
)

// handoverPoll is how often a request that found no scheduler is sent
// again while a standby may be taking over.
const handoverPoll = 25 * time.Millisecond

// callScheduler is bus.Call to a scheduler's subject that waits out a
// handover: while nobody listens there (bus.ErrNoResponders: the request
// reached no one, so sending it again is safe) it sends it again, until
// the lease's term and one renewal have passed (within which a standby
// takes over from an active scheduler that stood down or died) or ctx
// ends. A platform with no scheduler at all is told so after that wait.
func (s *Server) callScheduler(ctx context.Context, subject string, req, ack any) error {
	wait := s.cfg.Scheduler.LeaseTTL + s.cfg.Scheduler.LeaseRenew
	deadline := time.Now().Add(wait)
	var nobody error // the last "no one listens" while waiting
	for {
		err := s.bus.Call(ctx, subject, req, ack)
		if nobody != nil && err != nil && ctx.Err() != nil {
			// The caller's time ran out while a resend was on its way:
			// nobody had listened all along, and that is the answer.
			return nobody
		}
		if !errors.Is(err, bus.ErrNoResponders) || !time.Now().Before(deadline) {
			return err
		}
		nobody = err
		t := time.NewTimer(handoverPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
