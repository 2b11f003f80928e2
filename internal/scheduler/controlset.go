package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
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

// confFinder reads where conferences run, for the dispatch of their
// control.
type confFinder interface {
	// runsOn reads which platform runs e164, in the store that holds it
	// (home's when known); ok is false when no store holds it or it cannot
	// be read. holder is the platform of that store, "" when none was
	// found.
	runsOn(ctx context.Context, e164, home string) (holder, real string, ok bool)
	// ownRunsOn reads which platform runs e164 in this platform's own
	// store.
	ownRunsOn(ctx context.Context, e164 string) (real string, found bool, err error)
}

// controls serves the CM control of the conferences this instance runs:
// one wildcard subscription per bus (this platform's for the term, each
// connected master's), the set of conferences it controls, and the
// decision, for each message, of who answers it.
//
// Its lock is a leaf: nothing else is taken while it is held, and neither
// the finder nor the handler is called with it.
type controls struct {
	own   string
	plats platforms
	// backups: this platform has backups, so "no such conference" waits
	// deferFor (notFoundDefer) before it is answered.
	backups  bool
	deferFor time.Duration
	// later runs f after d (time.AfterFunc; tests take the timer's place).
	later func(d time.Duration, f func())
	find  confFinder
	h     bus.Handler // answers a request this instance takes
	bus   *bus.Bus    // this platform's
	log   *slog.Logger

	mu sync.Mutex
	// on is true while this instance is active: a create or restore that
	// finishes after it stood down takes no control.
	on  bool
	set controlSet
	// ends is the end time each conference was last said to be about to
	// end at (timers.go), forgotten with its control.
	ends map[string]int64
	// group is the term's on this platform's bus; peers' are for life.
	group *bus.Group
	peers map[string]*bus.Group
	wilds map[string]*bus.Subscription // the wildcard on each platform's bus
}

func newControls(own string, masters []string, backups bool, b *bus.Bus, find confFinder, h bus.Handler, log *slog.Logger) *controls {
	return &controls{
		own: own, plats: newPlatforms(own, masters), backups: backups, deferFor: notFoundDefer,
		later: func(d time.Duration, f func()) { time.AfterFunc(d, f) },
		find:  find, h: h, bus: b, log: log,
		set: controlSet{}, ends: make(map[string]int64), peers: make(map[string]*bus.Group), wilds: make(map[string]*bus.Subscription),
	}
}

// open starts a term: control is taken from now on, served on this
// platform's bus once listen subscribes.
func (c *controls) open() {
	g := c.bus.NewGroup(bus.HandlerFunc(func(ctx context.Context, m *bus.Msg) { c.serve(ctx, c.own, m) }), 8, 1<<14)
	c.mu.Lock()
	c.group = g
	c.on = true
	c.mu.Unlock()
}

// addPeer serves control on a master's bus too, from now on while active.
func (c *controls) addPeer(platform string, b *bus.Bus) error {
	g := b.NewGroup(bus.HandlerFunc(func(ctx context.Context, m *bus.Msg) { c.serve(ctx, platform, m) }), 4, 1<<14)
	c.mu.Lock()
	c.peers[platform] = g
	c.mu.Unlock()
	return c.listenPeers()
}

// listenPeers takes the control wildcard on the bus of every master
// connected so far, while active.
func (c *controls) listenPeers() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return nil
	}
	for p, g := range c.peers {
		if c.wilds[p] != nil {
			continue
		}
		sub, err := g.SubscribeWildcard(protocol.SubjectConfControl("*"))
		if err != nil {
			return fmt.Errorf("scheduler: on the bus of %s: %w", p, err)
		}
		c.wilds[p] = sub
	}
	return nil
}

// listen takes the control wildcard on every master's bus, then on this
// platform's.
func (c *controls) listen() error {
	if err := c.listenPeers(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on || c.wilds[c.own] != nil {
		return nil
	}
	sub, err := c.group.SubscribeWildcard(protocol.SubjectConfControl("*"))
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	c.wilds[c.own] = sub
	return nil
}

// shut ends a term's control: no more is taken, every wildcard goes, the
// set empties. The term's group stays until closeGroup.
func (c *controls) shut() {
	c.mu.Lock()
	c.on = false
	subs := make([]*bus.Subscription, 0, len(c.wilds))
	for _, sb := range c.wilds {
		subs = append(subs, sb)
	}
	c.wilds = make(map[string]*bus.Subscription)
	c.set = controlSet{}
	c.mu.Unlock()
	for _, sb := range subs {
		_ = sb.Unsubscribe()
	}
}

// closeGroup stops the term's group on this platform's bus, once the
// requests it is handling are done.
func (c *controls) closeGroup() {
	c.mu.Lock()
	g := c.group
	c.mu.Unlock()
	if g != nil {
		g.Close()
	}
}

// add makes this instance serve the control of e164, a conference held by
// platform's store ("" when not known): on this platform's bus, and for a
// conference of a master platform on the master's bus too, so its own CM
// controls it once the master is back (000 §2.3.3). Standing by, it does
// nothing: the active instance takes it from the store or the node's list.
func (c *controls) add(e164, platform string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.on {
		c.set.add(e164, c.plats.of(platform))
	}
}

// learn notes which platform's store holds a conference this instance
// controls. Nothing is kept about the others: a lookup of one of those
// asks the stores again, so that the memory of the scheduler grows with the
// conferences it runs, not with those it was once asked about.
func (c *controls) learn(e164, platform string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.set[e164]; ok {
		c.set.add(e164, c.plats.of(platform))
	}
}

// home is the platform whose store holds e164, "" when not known.
func (c *controls) home(e164 string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.plats.name(c.set[e164])
}

// has reports whether this instance serves e164's control.
func (c *controls) has(e164 string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.set[e164]
	return ok
}

// missing keeps the numbers whose control this instance does not serve.
func (c *controls) missing(e164s []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range e164s {
		if _, ok := c.set[e]; !ok {
			out = append(out, e)
		}
	}
	return out
}

// drop stops serving the control of e164 and forgets what this instance
// kept about it.
func (c *controls) drop(e164 string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.set, e164)
	delete(c.ends, e164)
}

// dropOwn lets go of the control of this platform's own conferences (and
// of those whose store is not known).
func (c *controls) dropOwn() {
	own := c.plats.of(c.own)
	c.mu.Lock()
	defer c.mu.Unlock()
	for e164, h := range c.set {
		if h == 0 || h == own {
			delete(c.set, e164)
			delete(c.ends, e164)
		}
	}
}

// toldEnd records that e164 was said to end at end, and reports whether
// it had been already.
func (c *controls) toldEnd(e164 string, end int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	told := c.ends[e164] == end
	c.ends[e164] = end
	return told
}

// endChanged forgets the end time e164 was said to end at.
func (c *controls) endChanged(e164 string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.ends, e164)
}

// What the dispatch does with a message on a control subject.
type verdict int

const (
	leave       verdict = iota // another scheduler answers it, or nobody does
	runsHere                   // this instance runs the conference: it answers
	asQueue                    // answered as the platform queue would
	answerLater                // "no such conference", after deferFor
)

func (v verdict) String() string {
	return [...]string{"leave", "runs-here", "as-queue", "answer-later"}[v]
}

// serve handles a message on mau.cmcmu.<e164> received on the bus of
// platform on (this platform's, or a master's).
func (c *controls) serve(ctx context.Context, on string, m *bus.Msg) {
	switch c.decide(ctx, on, m) {
	case runsHere, asQueue:
		c.h.ServeMsg(ctx, m)
	case answerLater:
		// A backup that ran the conference may have ended it a moment ago
		// and still be on its way to answer (it tells the node first): "no
		// such conference" from here must not beat its answer. A reply
		// after its is dropped by the requester.
		c.later(c.deferFor, func() { c.h.ServeMsg(context.Background(), m) })
	}
}

// decide says who answers a message on a control subject received on the
// bus of platform on, letting go of the control of a conference another
// platform runs now (see the top of this file).
func (c *controls) decide(ctx context.Context, on string, m *bus.Msg) verdict {
	e164, ok := strings.CutPrefix(m.Subject, protocol.SubjectConfControl(""))
	if !ok {
		return leave
	}
	own := on == c.own
	c.mu.Lock()
	h, runs := c.set[e164]
	c.mu.Unlock()
	home := c.plats.name(h)
	if runs && (own || home == on) {
		// A conference it cannot read counts as its own: the handler
		// answers with what the store says.
		holder, real, ok := c.find.runsOn(ctx, e164, home)
		if holder != "" && holder != home {
			c.learn(e164, holder)
		}
		if !ok || real == "" || real == c.own {
			return runsHere
		}
		c.log.Info("control request for a conference another platform runs now: letting go of its control", "e164", e164, "type", m.Type)
		c.drop(e164)
	}
	if !own || m.Reply == "" {
		return leave
	}
	// Where the conference is by this platform's store: a backup platform
	// that took it over answers its control on this bus.
	real, found, err := c.find.ownRunsOn(ctx, e164)
	switch {
	case err != nil:
		return asQueue
	case !found && c.backups:
		return answerLater
	case found && real != "" && real != c.own:
		return leave
	}
	return asQueue
}

// notFoundDefer is how long the platform's own scheduler holds back "no
// such conference" on a platform with backups.
const notFoundDefer = 500 * time.Millisecond
