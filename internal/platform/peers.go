package platform

import (
	"context"
	"fmt"
	"time"

	"github.com/convene/convene/internal/protocol"
)

// Polling the masters and backups.
//
// PMS asks each of them for its state (PLATFORM_STATE_REQ on its own bus,
// on monitor.req.<moid>) every PollInterval, each request bounded by
// PollInterval. An answer sets what is observed of it: the state its PMS
// gives itself (normal, or abnormal when an operator switched it over). A
// request that gets no usable answer (no responder, a timeout, a bus that
// is down, a refusal, an answer that is not about that platform) is a
// missed poll; MissedPolls of them in a row make it unreachable, and the
// next answer ends that. A platform that has never answered is given
// StartGrace from the start of the polls before its misses count. A
// platform without a bus connection is not polled: it is unreachable from
// the start.

// pollLoop polls one peer until Shutdown; the first poll goes out at once.
func (s *Service) pollLoop(p *peer) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	for {
		s.poll(ctx, p)
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

// poll asks a peer for its state once and applies the outcome.
func (s *Service) poll(ctx context.Context, p *peer) {
	moid := p.spec.Moid
	pctx, cancel := context.WithTimeout(ctx, s.opts.PollInterval)
	defer cancel()
	var ntf protocol.PlatformStateNtf
	err := p.bus.Call(pctx, protocol.SubjectPMS(moid), protocol.PlatformStateReqMsg{Type: protocol.PlatformStateRq, Platform: moid}, &ntf)
	if ctx.Err() != nil {
		return // shutting down: that says nothing of the peer
	}
	if err == nil {
		err = checkAnswer(moid, &ntf)
	}
	o := s.observe(p, ntf, err, time.Now())
	if o.changedObserved {
		args := []any{"target", moid, "observed", o.observed, "was", o.was, "reason", o.reason}
		if err != nil {
			args = append(args, "err", err)
		}
		if o.observed == protocol.PlatformNormal {
			s.log.Info("pms observes a platform normal", args...)
		} else {
			s.log.Warn("pms observes a platform failing", args...)
		}
	} else if err != nil {
		s.log.Debug("pms: a poll got no answer", "target", moid, "misses", o.misses, "err", err)
	}
	if o.change != nil {
		s.announcePlatform([]platformChange{*o.change}, false)
	}
}

// checkAnswer refuses an answer that is not a platform's account of
// itself.
func checkAnswer(moid string, ntf *protocol.PlatformStateNtf) error {
	switch {
	case ntf.Platform != moid:
		return fmt.Errorf("pms: platform %q answered on %s for %q: check which bus it is reached by",
			ntf.Platform, protocol.SubjectPMS(moid), moid)
	case ntf.State != protocol.PlatformNormal && ntf.State != protocol.PlatformAbnormal:
		return fmt.Errorf("pms: platform %q gives itself the state %q", moid, ntf.State)
	}
	return nil
}

// observation is what one poll changed.
type observation struct {
	changedObserved bool
	observed, was   string
	reason          string
	misses          int
	change          *platformChange // a master's effective state changed
}

// observe applies a poll's answer (err nil) or its failure to a peer.
func (s *Service) observe(p *peer, ntf protocol.PlatformStateNtf, err error, now time.Time) observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := observation{was: p.observed}
	if err == nil {
		p.misses, p.answered = 0, true
		p.observed, p.obsReason = ntf.State, ""
		if ntf.State == protocol.PlatformAbnormal {
			p.obsReason = ownReason(ntf)
		}
	} else if p.answered || now.Sub(s.pollsFrom) >= s.opts.StartGrace {
		p.misses++
		if p.misses >= s.opts.MissedPolls && p.observed != protocol.PlatformUnreachable {
			p.observed = protocol.PlatformUnreachable
			p.obsReason = fmt.Sprintf("unreachable: no answer to %d polls", p.misses)
		}
	}
	o.observed, o.reason, o.misses = p.observed, p.obsReason, p.misses
	o.changedObserved = o.observed != o.was
	if p.settle(now) {
		c := p.change("polls")
		o.change = &c
	}
	return o
}

// ownReason is why a platform says it is abnormal, as its backups tell it.
func ownReason(ntf protocol.PlatformStateNtf) string {
	switch {
	case !ntf.Manual:
		if ntf.Reason == "" {
			return "abnormal, says its monitor"
		}
		return "abnormal: " + ntf.Reason
	case ntf.Reason == "" || ntf.Reason == ReasonSwitchedOver:
		return ReasonSwitchedOver
	}
	return ReasonSwitchedOver + ": " + ntf.Reason
}

// startPolls starts a poller for each peer that has a bus connection.
func (s *Service) startPolls() {
	s.mu.Lock()
	s.pollsFrom = time.Now()
	s.mu.Unlock()
	for _, p := range s.pl.peers {
		if p.bus == nil {
			s.log.Warn("pms has no connection to a platform's bus: it is unreachable", "target", p.spec.Moid,
				"master", p.master, "backup", p.backup)
			continue
		}
		s.life.Go(func() { s.pollLoop(p) })
	}
}
