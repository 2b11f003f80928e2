package scheduler

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// CM control of a running conference arrives on mau.cmcmu.<e164> (000
// §2.3.6). The active scheduler takes the whole subject space with one
// wildcard subscription on its own platform's bus, and one on the bus of
// each master it is connected to, and serves a request from an in-memory
// set of the conferences it runs, kept in step with the store: a
// subscription per conference would cost the bus and this process about
// a kilobyte each.
//
// Who answers a request on the bus of platform P, so that it is applied
// exactly once, by the scheduler of the platform that runs the conference:
//   - a scheduler running the conference answers, on its own bus and, for
//     a conference of its master P, on P's bus; if the store says another
//     platform runs it now (it moved: P was switched over to a backup, or
//     came back while the backup keeps it), it lets go of it and is silent;
//   - P's scheduler answers a request for a conference it does not run as
//     P's platform queue (mau.cmmau.P) would, where the CM turns when no
//     scheduler runs a conference, unless P's store says another platform
//     runs it: that platform's scheduler answers on P's bus;
//   - a notice (no reply wanted, such as the CM's answer to a rename) is
//     for the scheduler running the conference only.

// controlSet holds the conferences whose control this instance serves,
// each with the platform whose store holds it (its index in platforms; 0
// when not known). A few dozen bytes a conference.
type controlSet map[string]uint8

// add puts e164 in the set. A home of 0 keeps the one already known.
func (c controlSet) add(e164 string, home uint8) {
	if old, ok := c[e164]; ok {
		if home != 0 && home != old {
			c[e164] = home
		}
		return
	}
	// The key outlives the request it came from: it must not hold a
	// message's buffer.
	c[strings.Clone(e164)] = home
}

// platforms numbers the possible-service platforms: this one and its
// masters, fixed for the life of the scheduler.
type platforms struct {
	names []string // index -> moid; names[0] is "" (not known)
	index map[string]uint8
}

func newPlatforms(own string, masters []string) platforms {
	p := platforms{names: []string{""}, index: map[string]uint8{}}
	for _, m := range append([]string{own}, masters...) {
		if _, ok := p.index[m]; ok || m == "" || len(p.names) > 255 {
			continue
		}
		p.index[m] = uint8(len(p.names))
		p.names = append(p.names, m)
	}
	return p
}

// of is a platform's index, 0 for one not known.
func (p platforms) of(moid string) uint8 { return p.index[moid] }

// name is the moid of an index, "" for 0.
func (p platforms) name(i uint8) string {
	if int(i) < len(p.names) {
		return p.names[i]
	}
	return ""
}

// serveControl handles a message on mau.cmcmu.<e164> received on the bus
// of platform on (this platform's, or a master's).
func (s *Scheduler) serveControl(ctx context.Context, on string, m *bus.Msg) {
	e164, ok := strings.CutPrefix(m.Subject, protocol.SubjectConfControl(""))
	if !ok {
		return
	}
	own := on == s.opts.Platform
	s.mu.Lock()
	home, runs := s.controls[e164]
	ctl := s.ctl
	s.mu.Unlock()
	if runs && (own || s.plats.name(home) == on) {
		if !s.runsElsewhere(ctx, e164) {
			ctl.ServeMsg(ctx, m)
			return
		}
		s.log.Info("control request for a conference another platform runs now: letting go of its control", "e164", e164, "type", m.Type)
		s.unsubscribeControl(e164)
	}
	if !own || m.Reply == "" {
		return
	}
	switch s.ownCopy(ctx, e164) {
	case copyOnBackup:
		return
	case copyNone:
		if len(s.cfg.Local().Backups) > 0 {
			// A backup that ran the conference may have ended it a
			// moment ago and still be on its way to answer (it tells the
			// node first): "no such conference" from here must not beat
			// its answer. A reply after its is dropped by the requester.
			time.AfterFunc(notFoundDefer, func() { ctl.ServeMsg(context.Background(), m) })
			return
		}
	}
	ctl.ServeMsg(ctx, m)
}

// notFoundDefer is how long the platform's own scheduler holds back "no
// such conference" on a platform with backups.
const notFoundDefer = 500 * time.Millisecond

// Where a conference of this platform is, for the answer to its control.
const (
	copyHere     = iota // running or waiting here, or unreadable: answer
	copyOnBackup        // a backup platform runs it: it answers
	copyNone            // not in the store
)

// runsElsewhere reports whether the store holding e164 says it runs on
// another platform. A conference it cannot read is treated as its own: the
// handler answers with what the store says.
func (s *Scheduler) runsElsewhere(ctx context.Context, e164 string) bool {
	w, err := s.locate(ctx, e164)
	if err != nil {
		return false
	}
	b, err := w.st.Brief(ctx, []string{e164})
	if err != nil {
		return false
	}
	c, ok := b[e164]
	return ok && c.RealPlatform != "" && c.RealPlatform != s.opts.Platform
}

// ownCopy says where a conference of this platform's store is: a backup
// platform that took it over answers its control on this bus.
func (s *Scheduler) ownCopy(ctx context.Context, e164 string) int {
	b, err := s.store.Brief(ctx, []string{e164})
	if err != nil {
		return copyHere
	}
	c, ok := b[e164]
	switch {
	case !ok:
		return copyNone
	case c.RealPlatform != "" && c.RealPlatform != s.opts.Platform:
		return copyOnBackup
	}
	return copyHere
}

// subscribeControl makes this instance serve the control of e164, a
// conference held by platform's store ("" when not known): on this
// platform's bus, and for a conference of a master platform on the
// master's bus too, so its own CM controls it once the master is back (000
// §2.3.3). Standing by, it does nothing: the active instance takes it from
// the store or the node's list.
func (s *Scheduler) subscribeControl(e164, platform string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.controlling {
		return nil
	}
	s.controls.add(e164, s.plats.of(platform))
	return nil
}

// unsubscribeControl stops serving the control of e164 and forgets what
// this instance kept about it.
func (s *Scheduler) unsubscribeControl(e164 string) {
	s.mu.Lock()
	delete(s.controls, e164)
	delete(s.willEnd, e164)
	s.mu.Unlock()
}

// Controlled reports whether this scheduler serves e164's control.
func (s *Scheduler) Controlled(e164 string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.controls[e164]
	return ok
}

// listenPeers takes the control wildcard on the bus of every master
// connected so far, while this instance is active.
func (s *Scheduler) listenPeers() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.controlling {
		return nil
	}
	for p, g := range s.peerGroups {
		if s.peerSubs[p] != nil {
			continue
		}
		sub, err := g.SubscribeWildcard(protocol.SubjectConfControl("*"))
		if err != nil {
			return fmt.Errorf("scheduler: on the bus of %s: %w", p, err)
		}
		s.peerSubs[p] = sub
	}
	return nil
}
