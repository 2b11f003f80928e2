package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/convene/convene/internal/bus"
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
}

// Dialer connects to another platform with the addresses its PMS gives.
type Dialer func(ctx context.Context, p protocol.PlatformInfo) (Peer, error)

// where is a store and the platform it belongs to.
type where struct {
	st       *store.Store
	platform string
}

// masters lists the platforms whose conferences this one takes when they
// fail: those listing it as a backup in the topology.
func (s *Scheduler) masterMoids() []string {
	var out []string
	for _, p := range s.cfg.Platforms {
		for _, b := range p.Backups {
			if b == s.opts.Platform {
				out = append(out, p.Moid)
			}
		}
	}
	sort.Strings(out)
	return out
}

// serves reports whether a platform is in the service list now.
func (s *Scheduler) serves(platform string) bool {
	if platform == s.opts.Platform {
		return !s.ownDown.Load()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served[platform]
}

// storeOf is a possible-service platform's store, or nil.
func (s *Scheduler) storeOf(platform string) *store.Store {
	if platform == s.opts.Platform {
		return s.store
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.peers[platform]; ok {
		return p.Store
	}
	return nil
}

// stores lists the possible-service platforms' stores, this one first.
func (s *Scheduler) stores() []where {
	out := []where{{s.store, s.opts.Platform}}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.masters {
		if p, ok := s.peers[m]; ok {
			out = append(out, where{p.Store, m})
		}
	}
	return out
}

// servedStores lists the stores of the platforms served now.
func (s *Scheduler) servedStores() []where {
	var out []where
	for _, w := range s.stores() {
		if s.serves(w.platform) {
			out = append(out, w)
		}
	}
	return out
}

// remember notes which platform's store holds a conference this instance
// controls. Nothing is kept about the others: a lookup of one of those
// asks the stores again, so that the memory of the scheduler grows with the
// conferences it runs, not with those it was once asked about.
func (s *Scheduler) remember(e164, platform string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.controls[e164]; ok {
		s.controls.add(e164, s.plats.of(platform))
	}
}

// locate finds the store that holds a conference.
func (s *Scheduler) locate(ctx context.Context, e164 string) (where, error) {
	s.mu.Lock()
	home := s.plats.name(s.controls[e164])
	s.mu.Unlock()
	if home != "" {
		if st := s.storeOf(home); st != nil {
			return where{st, home}, nil
		}
	}
	for _, w := range s.stores() {
		exists, err := w.st.Exists(ctx, e164)
		if err != nil {
			continue
		}
		if exists {
			s.remember(e164, w.platform)
			return w, nil
		}
	}
	return where{}, fail(protocol.ErrConfNotFound, store.ErrConfNotFound, "no conference %s", e164)
}

// cmBus is where a conference's CM hears of it: this platform's CM while
// its source platform is served here, the source's own CM once that is back
// (000 §2.3.3).
func (s *Scheduler) cmBus(platform string) *bus.Bus {
	if platform == "" || platform == s.opts.Platform || s.serves(platform) {
		return s.bus
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.peers[platform]; ok {
		return p.Bus
	}
	return s.bus
}

// notifyCMOf publishes a notification for the CM of a conference of
// platform (meeting.mccntf).
func (s *Scheduler) notifyCMOf(platform string, v any) {
	if err := s.cmBus(platform).Publish(protocol.SubjectCMNotifications, v); err != nil {
		s.log.Warn("could not notify the CM", "platform", platform, "err", err)
	}
}

// askPlatforms follows 000 §2.2: PLATFORM_STATE_REQ to this platform's
// PMS, the possible-service list from its masters, a connection to each
// master's bus and store, those already failed promoted to the service
// list. Without a PMS, the topology's masters count as normal.
func (s *Scheduler) askPlatforms(ctx context.Context) {
	var ntf protocol.PlatformStateNtf
	rctx, cancel := context.WithTimeout(ctx, s.opts.RMSTimeout)
	err := s.bus.Call(rctx, protocol.SubjectPMS(s.opts.Platform), protocol.PlatformStateReqMsg{Type: protocol.PlatformStateRq, Platform: s.opts.Platform}, &ntf)
	cancel()
	if err != nil {
		s.log.Info("no platform states from PMS; masters count as normal until it says otherwise", "err", err)
		ntf = protocol.PlatformStateNtf{Platform: s.opts.Platform, State: protocol.PlatformNormal}
		for _, m := range s.masterMoids() {
			p, _ := s.cfg.PlatformByMoid(m)
			ntf.Masters = append(ntf.Masters, protocol.PlatformInfo{Platform: m, State: protocol.PlatformNormal, Store: p.Store, Bus: p.Bus})
		}
	}
	s.applyPlatforms(ctx, ntf)
}

// handlePlatforms hears PMS's PLATFORM_STATE_NOTIFY.
func (s *Scheduler) handlePlatforms(ctx context.Context, m *bus.Msg) {
	var ntf protocol.PlatformStateNtf
	if err := m.Decode(&ntf); err != nil {
		s.log.Warn("bad platform state notice", "err", err)
		return
	}
	if ntf.Platform != s.opts.Platform {
		return
	}
	s.applyPlatforms(ctx, ntf)
}

// applyPlatforms updates the own state and the service list, connects to
// masters not connected yet, and fails over or back as states change.
func (s *Scheduler) applyPlatforms(ctx context.Context, ntf protocol.PlatformStateNtf) {
	s.platMu.Lock()
	defer s.platMu.Unlock()
	down := ntf.State == protocol.PlatformAbnormal
	if was := s.ownDown.Swap(down); was != down {
		if down {
			s.log.Warn("this platform is switched over to its backups: standing down", "reason", ntf.Reason)
			s.dropOwnControls()
		} else {
			s.log.Info("this platform is back: serving again")
			s.readoptOwnControls(ctx)
			s.kickRestore()
		}
	}
	known := map[string]bool{}
	for _, m := range s.masterMoids() {
		known[m] = true
	}
	var failed, back []string
	for _, info := range ntf.Masters {
		if !known[info.Platform] {
			continue // not a master in this topology
		}
		if err := s.dial(ctx, info); err != nil {
			s.log.Warn("cannot reach a master platform's bus and store", "platform", info.Platform, "err", err)
		}
		abnormal := info.State == protocol.PlatformAbnormal && info.DRMode != protocol.DRClosed
		s.mu.Lock()
		was := s.served[info.Platform]
		_, connected := s.peers[info.Platform]
		if abnormal && !was && connected {
			s.served[info.Platform] = true
			failed = append(failed, info.Platform)
		} else if !abnormal && was {
			delete(s.served, info.Platform)
			back = append(back, info.Platform)
		}
		s.mu.Unlock()
	}
	for _, p := range failed {
		s.failover(ctx, p)
	}
	for _, p := range back {
		s.failback(ctx, p)
	}
	s.act.applied(ntf)
}

// dial connects to a master platform once.
func (s *Scheduler) dial(ctx context.Context, info protocol.PlatformInfo) error {
	s.mu.Lock()
	_, ok := s.peers[info.Platform]
	s.mu.Unlock()
	if ok {
		return nil
	}
	if s.dialer == nil {
		return errors.New("no dialer configured")
	}
	p, err := s.dialer(ctx, info)
	if err != nil {
		return err
	}
	on := info.Platform
	g := p.Bus.NewGroup(bus.HandlerFunc(func(ctx context.Context, m *bus.Msg) { s.serveControl(ctx, on, m) }), 4, 1<<14)
	s.mu.Lock()
	s.peers[info.Platform] = p
	s.peerGroups[info.Platform] = g
	if !contains(s.masters, info.Platform) {
		s.masters = append(s.masters, info.Platform)
		sort.Strings(s.masters)
	}
	s.mu.Unlock()
	if err := s.listenPeers(); err != nil {
		s.log.Warn("cannot serve conference control on a master platform's bus", "platform", info.Platform, "err", err)
	}
	s.publishDomainsOf(ctx, info.Platform, p.Store)
	s.log.Info("connected to a master platform", "platform", info.Platform, "bus", info.Bus, "store", info.Store)
	return nil
}

// failover takes over a failed master (000 §2.3.1): its conferences that
// ran there become pending-restore and are restored here; its templates are
// reported to this registry.
func (s *Scheduler) failover(ctx context.Context, platform string) {
	st := s.storeOf(platform)
	if st == nil || s.dead.Load() {
		return
	}
	s.log.Warn("master platform failed: taking over its conferences", "platform", platform)
	// Its tenants' lists say which conferences run; only those are read.
	var running []string
	for _, d := range s.cfg.Domains {
		if d.Platform != platform {
			continue
		}
		states, err := st.DomainStates(ctx, d.Moid)
		if err != nil {
			s.log.Error("could not read the failed platform's conferences", "platform", platform, "domain", d.Moid, "err", err)
			continue
		}
		for e, state := range states {
			if state == protocol.StateRunning {
				running = append(running, e)
			}
		}
	}
	briefs, err := st.Brief(ctx, running)
	if err != nil {
		s.log.Error("could not read the failed platform's conferences", "platform", platform, "err", err)
		return
	}
	byNode := map[string][]string{}
	for e, c := range briefs {
		if c.State == protocol.StateRunning && c.RealPlatform == platform && !c.Legacy {
			byNode[c.Node] = append(byNode[c.Node], e)
		}
	}
	reason := fmt.Sprintf("platform %s failed", platform)
	moved := 0
	for node, e164s := range byNode {
		m, _, err := st.Pend(ctx, node, reason, e164s, func(int) { s.kickRestore() })
		if err != nil {
			s.log.Error("could not mark the failed platform's conferences pending-restore", "platform", platform, "err", err)
		}
		moved += len(m)
		for _, e := range m {
			s.notifyCM(protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: e, State: protocol.StatePendingRestore, Reason: reason})
		}
	}
	s.reportTemplatesOf(ctx, platform, st, protocol.UPUConfAddNtf)
	s.log.Warn("failed platform's conferences pending restore here", "platform", platform, "conferences", moved)
	s.kickRestore()
}

// failback hands a recovered master its service back (000 §2.3.3): its
// conferences still running here keep running, controlled from its bus and
// reporting to its CM; its pending ones are its own scheduler's again.
func (s *Scheduler) failback(ctx context.Context, platform string) {
	s.log.Info("master platform recovered: it serves its own again", "platform", platform)
	if st := s.storeOf(platform); st != nil {
		s.reportTemplatesOf(ctx, platform, st, protocol.UPUConfDelNtf)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// dropOwnControls lets go of the control of this platform's own
// conferences when it stands down: its backups restore them and answer
// their control on this platform's bus, and until then this scheduler
// answers as the platform queue, from the store. Holding them would answer
// (or apply) a request twice.
func (s *Scheduler) dropOwnControls() {
	own := s.plats.of(s.opts.Platform)
	s.mu.Lock()
	defer s.mu.Unlock()
	for e164, h := range s.controls {
		if h == 0 || h == own {
			delete(s.controls, e164)
			delete(s.willEnd, e164)
		}
	}
}

// readoptOwnControls takes back the control of the conferences that still
// run on this platform when it serves again (those its backups run keep
// theirs there).
func (s *Scheduler) readoptOwnControls(ctx context.Context) {
	confs, err := s.store.AllConferences(ctx)
	if err != nil {
		s.log.Warn("could not read conferences to take back their control", "err", err)
		return
	}
	for _, c := range confs {
		if c.RealPlatform != s.opts.Platform || (c.State == protocol.StateCreating && c.Node == "") {
			continue
		}
		if err := s.subscribeControl(c.E164, s.opts.Platform); err != nil {
			s.log.Warn("could not take back a conference's control", "e164", c.E164, "err", err)
		}
	}
}
