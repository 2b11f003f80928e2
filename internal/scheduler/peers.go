package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// Across platforms (000 §0, §2): the possible-service platforms are this
// platform and its masters (fixed after start); the service platforms are
// this one and the masters PMS says are failed right now. A conference's
// data lives in the store of its source platform (the platform of its user
// domain), wherever it runs.

// Peer is a connection to another platform's bus and store.
type Peer struct {
	Bus   *bus.Bus
	Store *store.Store
	// Records, when set, is the platform's own records database; nil: its
	// templates and bookings are in this scheduler's (bookings.go).
	Records Records
}

// Dialer connects to another platform with the addresses its PMS gives.
type Dialer func(ctx context.Context, p protocol.PlatformInfo) (Peer, error)

// where is a store and the platform it belongs to.
type where struct {
	st       *store.Store
	platform string
}

// peerEvents is what the service list sets off as platform states change.
// The calls come one at a time, in the order the states change.
type peerEvents interface {
	// connected: a master's bus and store are reachable from now on.
	connected(ctx context.Context, info protocol.PlatformInfo, p Peer)
	// standDown: this platform is switched over to its backups.
	standDown()
	// serveAgain: this platform is back.
	serveAgain(ctx context.Context)
	// failover: a master failed and is in the service list now.
	failover(ctx context.Context, platform string)
	// failback: a master recovered and left the service list.
	failback(ctx context.Context, platform string)
}

// peers keeps the disaster-recovery side of a scheduler: its connections
// to the masters' buses and stores, and the service list (this platform
// unless it is switched over, and the masters that failed), as PMS's
// PLATFORM_STATE_NOTIFY says.
//
// Lock order: applying, then mu; mu is a leaf, and peerEvents are called
// with applying held, never mu.
type peers struct {
	own     string
	st      *store.Store
	bus     *bus.Bus
	masters []string // the topology's masters of own, sorted
	// assumed is what is taken for the states without a PMS: every
	// platform normal, the masters at their configured addresses.
	assumed protocol.PlatformStateNtf
	timeout time.Duration // of a request to PMS
	dial    Dialer
	ev      peerEvents
	log     *slog.Logger

	// applying serializes apply: a notice is applied whole, with what it
	// sets off, before the next.
	applying sync.Mutex
	down     atomic.Bool // this platform is switched over to its backups

	mu        sync.Mutex
	conns     map[string]Peer // by master moid
	connected []string        // masters connected so far, sorted
	served    map[string]bool // masters in the service list now
	last      protocol.PlatformStateNtf
}

func newPeers(own string, b *bus.Bus, st *store.Store, cfg *config.Config, timeout time.Duration, dial Dialer, ev peerEvents, log *slog.Logger) *peers {
	p := &peers{
		own: own, bus: b, st: st, masters: mastersOf(cfg, own), timeout: timeout, dial: dial, ev: ev, log: log,
		conns: make(map[string]Peer), served: make(map[string]bool),
	}
	p.assumed = protocol.PlatformStateNtf{Platform: own, State: protocol.PlatformNormal}
	for _, m := range p.masters {
		c, _ := cfg.PlatformByMoid(m)
		p.assumed.Masters = append(p.assumed.Masters, protocol.PlatformInfo{Platform: m, State: protocol.PlatformNormal, Store: c.Store, Bus: c.Bus})
	}
	return p
}

// mastersOf lists the platforms whose conferences own takes when they
// fail: those listing it as a backup in the topology.
func mastersOf(cfg *config.Config, own string) []string {
	var out []string
	for _, p := range cfg.Platforms {
		for _, b := range p.Backups {
			if b == own {
				out = append(out, p.Moid)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ask follows 000 §2.2: PLATFORM_STATE_REQ to this platform's PMS, the
// possible-service list from its masters, a connection to each master's
// bus and store, those already failed promoted to the service list.
// Without a PMS, the topology's masters count as normal.
func (p *peers) ask(ctx context.Context) {
	var ntf protocol.PlatformStateNtf
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	err := p.bus.Call(rctx, protocol.SubjectPMS(p.own), protocol.PlatformStateReqMsg{Type: protocol.PlatformStateRq, Platform: p.own}, &ntf)
	cancel()
	if err != nil {
		p.log.Info("no platform states from PMS; masters count as normal until it says otherwise", "err", err)
		ntf = p.assumed
	}
	p.apply(ctx, ntf)
}

// handle hears PMS's PLATFORM_STATE_NOTIFY.
func (p *peers) handle(ctx context.Context, m *bus.Msg) {
	var ntf protocol.PlatformStateNtf
	if err := m.Decode(&ntf); err != nil {
		p.log.Warn("bad platform state notice", "err", err)
		return
	}
	if ntf.Platform != p.own {
		return
	}
	p.apply(ctx, ntf)
}

// ownDown reports whether this platform is switched over to its backups.
func (p *peers) ownDown() bool { return p.down.Load() }

// serves reports whether a platform is in the service list now.
func (p *peers) serves(platform string) bool {
	if platform == p.own {
		return !p.down.Load()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.served[platform]
}

// storeOf is a possible-service platform's store, or nil.
func (p *peers) storeOf(platform string) *store.Store {
	if platform == p.own {
		return p.st
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[platform]; ok {
		return c.Store
	}
	return nil
}

// stores lists the possible-service platforms' stores, this one first.
func (p *peers) stores() []where {
	out := []where{{p.st, p.own}}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.connected {
		out = append(out, where{p.conns[m].Store, m})
	}
	return out
}

// servedStores lists the stores of the platforms served now.
func (p *peers) servedStores() []where {
	var out []where
	for _, w := range p.stores() {
		if p.serves(w.platform) {
			out = append(out, w)
		}
	}
	return out
}

// cmBus is where a conference's CM hears of it: this platform's CM while
// its source platform is served here, the source's own CM once that is back
// (000 §2.3.3).
func (p *peers) cmBus(platform string) *bus.Bus {
	if platform == "" || platform == p.own || p.serves(platform) {
		return p.bus
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[platform]; ok {
		return c.Bus
	}
	return p.bus
}

// applied is the last notice applied, with what it set off done.
func (p *peers) applied() protocol.PlatformStateNtf {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// apply updates the own state and the service list, connects to masters
// not connected yet, and fails over or back as states change: a master
// enters the service list when PMS says it failed, unless its disaster
// recovery is closed, and once it is connected; it leaves when it is
// normal again (or its disaster recovery closed).
func (p *peers) apply(ctx context.Context, ntf protocol.PlatformStateNtf) {
	p.applying.Lock()
	defer p.applying.Unlock()
	down := ntf.State == protocol.PlatformAbnormal
	if was := p.down.Swap(down); was != down {
		if down {
			p.log.Warn("this platform is switched over to its backups: standing down", "reason", ntf.Reason)
			p.ev.standDown()
		} else {
			p.log.Info("this platform is back: serving again")
			p.ev.serveAgain(ctx)
		}
	}
	var failed, back []string
	for _, info := range ntf.Masters {
		if !contains(p.masters, info.Platform) {
			continue // not a master in this topology
		}
		if err := p.connect(ctx, info); err != nil {
			p.log.Warn("cannot reach a master platform's bus and store", "platform", info.Platform, "err", err)
		}
		abnormal := info.State == protocol.PlatformAbnormal && info.DRMode != protocol.DRClosed
		p.mu.Lock()
		was := p.served[info.Platform]
		_, connected := p.conns[info.Platform]
		if abnormal && !was && connected {
			p.served[info.Platform] = true
			failed = append(failed, info.Platform)
		} else if !abnormal && was {
			delete(p.served, info.Platform)
			back = append(back, info.Platform)
		}
		p.mu.Unlock()
	}
	for _, m := range failed {
		p.ev.failover(ctx, m)
	}
	for _, m := range back {
		p.ev.failback(ctx, m)
	}
	p.mu.Lock()
	p.last = ntf
	p.mu.Unlock()
}

// connect dials a master platform once.
func (p *peers) connect(ctx context.Context, info protocol.PlatformInfo) error {
	p.mu.Lock()
	_, ok := p.conns[info.Platform]
	p.mu.Unlock()
	if ok {
		return nil
	}
	if p.dial == nil {
		return errors.New("no dialer configured")
	}
	c, err := p.dial(ctx, info)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.conns[info.Platform] = c
	if !contains(p.connected, info.Platform) {
		p.connected = append(p.connected, info.Platform)
		sort.Strings(p.connected)
	}
	p.mu.Unlock()
	p.ev.connected(ctx, info, c)
	p.log.Info("connected to a master platform", "platform", info.Platform, "bus", bus.RedactURL(info.Bus), "store", store.RedactURL(info.Store))
	return nil
}

// locate finds the store that holds a conference: home's when known and
// connected, else the first possible-service store that has it.
func (p *peers) locate(ctx context.Context, e164, home string) (where, bool) {
	if home != "" {
		if st := p.storeOf(home); st != nil {
			return where{st, home}, true
		}
	}
	for _, w := range p.stores() {
		exists, err := w.st.Exists(ctx, e164)
		if err != nil {
			continue
		}
		if exists {
			return w, true
		}
	}
	return where{}, false
}

// runsOn reads which platform runs e164, in the store that holds it
// (home's when known); ok is false when no store holds it or it cannot be
// read. holder is the platform of that store, "" when none was found.
func (p *peers) runsOn(ctx context.Context, e164, home string) (holder, real string, ok bool) {
	w, found := p.locate(ctx, e164, home)
	if !found {
		return "", "", false
	}
	b, err := w.st.Brief(ctx, []string{e164})
	if err != nil {
		return w.platform, "", false
	}
	c, ok := b[e164]
	return w.platform, c.RealPlatform, ok
}

// ownRunsOn reads which platform runs e164 in this platform's own store.
func (p *peers) ownRunsOn(ctx context.Context, e164 string) (real string, found bool, err error) {
	b, err := p.st.Brief(ctx, []string{e164})
	if err != nil {
		return "", false, err
	}
	c, found := b[e164]
	return c.RealPlatform, found, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
