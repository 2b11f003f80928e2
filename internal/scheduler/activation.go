package scheduler

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/service"
)

// term is one stretch of being the active scheduler: everything it started
// stops with it.
type term struct {
	ctx    context.Context
	cancel context.CancelFunc
	// life holds the term's subscriptions (but for CM control: controls)
	// and its goroutines, which deactivate stops and waits for.
	life service.Life
	// started is when the term began; graceDone closes when the start-up
	// grace is over (every live node reported, or StartGrace passed).
	started   time.Time
	graceDone chan struct{}
	graceOnce sync.Once
	// expect lists the nodes whose conference lists the grace waits for;
	// down, the nodes RMS said were down since (and not up again): the
	// grace waits for no list of theirs. Both under the scheduler's mu.
	expect map[string]bool
	down   map[string]bool
	// adopted is what the stores held when the term began.
	adopted []located
}

// termStopTimeout bounds deactivate's wait for the term's goroutines.
const termStopTimeout = 5 * time.Second

// activate makes this instance the active scheduler: adopt what the store
// says runs here, subscribe, learn the room states, start the timers and
// the start-up grace (000 §9.5).
func (s *Scheduler) activate(ctx context.Context) error {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	if s.cur.Load() != nil {
		return nil
	}
	tctx, cancel := context.WithCancel(context.Background())
	t := &term{ctx: tctx, cancel: cancel, started: time.Now(), graceDone: make(chan struct{}), expect: map[string]bool{}, down: map[string]bool{}}
	t.life.Init("scheduler "+s.opts.Platform, s.bus, s.log)
	s.loads.reset()
	s.mu.Lock()
	s.lists = make(map[string]nodeList)
	s.restore = newRestorer(s.opts)
	s.mu.Unlock()
	s.ctl.open()
	if err := t.life.Start(nil, func() error { return s.subscribe(ctx, t) }); err != nil {
		cancel()
		s.ctl.shut()
		s.ctl.closeGroup()
		return err
	}
	s.cur.Store(t)
	s.askRoomStates(ctx)
	// In the background: a fresh RMS holds its node list for up to a
	// heartbeat deadline, and the grace waits for it anyway (a node that
	// reports before the list is asked again once it is listed).
	t.life.Go(func() { s.askNodeLists(t.ctx, t) })
	s.every(t, s.opts.EndCheckInterval, s.checkEndTimes)
	s.every(t, monitorCheckInterval(s.opts.MonitorTTL), s.expireMonitors)
	s.every(t, s.opts.SweepInterval, s.sweep)
	s.startRecords(t)
	t.life.Go(func() { s.graceTimer(t) })
	t.life.Go(func() { s.restoreLoop(t) })
	s.ready.Store(true)
	s.log.Info("scheduler active", "conferences", s.loads.total(), "grace", s.opts.StartGrace)
	return nil
}

// subscribe adopts what the stores say runs here and makes the term's
// subscriptions (through t.life, which drops them when one fails), and
// confirms them with the bus server.
func (s *Scheduler) subscribe(ctx context.Context, t *term) error {
	s.dr.ask(ctx)
	if err := s.adopt(ctx, t); err != nil {
		return err
	}
	if err := s.ctl.listen(); err != nil {
		return err
	}
	cm := bus.NewMux(s.logUnknown)
	cm.HandleFunc(protocol.CMCreateConfReq, s.handleCreate)
	cm.HandleFunc(protocol.CMCreateTemplateReq, s.handleTemplate)
	cm.HandleFunc(protocol.CMModifyTemplateReq, s.handleTemplate)
	cm.HandleFunc(protocol.CMDeleteTemplateReq, s.handleTemplate)
	s.bookingRoutes(cm)
	s.controlRoutes(cm)
	nodes := bus.NewMux(s.logUnknown)
	s.nodeRoutes(nodes)
	for _, sub := range []struct {
		subject string
		h       bus.Handler
		opts    []bus.SubOption
	}{
		{protocol.SubjectCMMAU(s.opts.Platform), cm, []bus.SubOption{bus.Queue("scheduler"), bus.Concurrent(s.opts.Concurrency)}},
		{protocol.SubjectFromNodes(s.opts.Platform), nodes, []bus.SubOption{bus.Concurrent(64)}},
		{protocol.SubjectRegistryResync(s.opts.Platform), bus.HandlerFunc(s.handleResync), nil},
		{protocol.SubjectRMSNotify(s.opts.Platform), bus.HandlerFunc(s.handleNodeState), nil},
		{protocol.SubjectServerRoomNotify, bus.HandlerFunc(s.handleRoomStates), nil},
		{protocol.SubjectPlatformNotify, bus.HandlerFunc(s.dr.handle), nil},
	} {
		if _, err := t.life.Subscribe(s.bus, sub.subject, sub.h, sub.opts...); err != nil {
			return err
		}
	}
	return t.life.Confirm(ctx, s.bus)
}

// deactivate stands down: stop the timers and loops, drop every
// subscription. Conferences keep running; nothing in the store changes.
func (s *Scheduler) deactivate() {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	t := s.cur.Load()
	if t == nil {
		return
	}
	s.cur.Store(nil)
	s.ready.Store(false)
	t.cancel()
	s.ctl.shut()
	ctx, cancel := context.WithTimeout(context.Background(), termStopTimeout)
	defer cancel()
	if err := t.life.Shutdown(ctx); err != nil {
		s.log.Warn("the term did not stop in time", "within", termStopTimeout, "err", err)
	}
	s.ctl.closeGroup()
	s.log.Info("scheduler standing by")
}

// currentTerm is the term under way, or nil when standing by.
func (s *Scheduler) currentTerm() *term { return s.cur.Load() }

// adopt takes over the conferences the possible-service stores say run on
// this platform: their control and their nodes' loads.
func (s *Scheduler) adopt(ctx context.Context, t *term) error {
	for _, w := range s.dr.stores() {
		confs, err := w.st.AllConferences(ctx)
		if err != nil {
			if w.platform == s.opts.Platform {
				return fmt.Errorf("scheduler: read conferences: %w", err)
			}
			s.log.Warn("could not read a master platform's conferences", "platform", w.platform, "err", err)
			continue
		}
		for _, c := range confs {
			if c.RealPlatform != s.opts.Platform {
				continue
			}
			t.adopted = append(t.adopted, located{c, w})
			if c.Node != "" {
				s.loads.add(c.Node, 1)
			}
			if c.State != protocol.StateCreating || c.Node != "" {
				s.ctl.add(c.E164, w.platform)
			}
		}
	}
	return nil
}

// askRoomStates learns which rooms are abnormal now (SERVER_ROOM_STATE_REQ
// to PMS, 000 §2.2); without a PMS, every room counts as normal.
func (s *Scheduler) askRoomStates(ctx context.Context) {
	var ntf protocol.ServerRoomStateNtf
	rctx, cancel := context.WithTimeout(ctx, s.opts.RMSTimeout)
	defer cancel()
	err := s.bus.Call(rctx, protocol.SubjectPMS(s.opts.Platform), protocol.ServerRoomStateReq{Type: protocol.ServerRoomStateRq, Platform: s.opts.Platform}, &ntf)
	if err != nil {
		s.log.Info("no room states from PMS; every room counts as normal until it says otherwise", "err", err)
		return
	}
	s.applyRoomStates(ctx, ntf)
}

// nodeDownInGrace takes a node RMS said is down (or up again) out of (or
// back into the reckoning of) the current term's start-up grace: the grace
// waits for no list a down node cannot send, and ends once the others sent
// theirs.
func (s *Scheduler) nodeDownInGrace(node string, down bool) {
	t := s.currentTerm()
	if t == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !down {
		delete(t.down, node)
		return
	}
	t.down[node] = true
	t.reported(node)
}

// reported takes node off the nodes the grace waits for, and ends the
// grace when it was the last; the caller holds the scheduler's mu.
func (t *term) reported(node string) {
	if t.expect[node] {
		delete(t.expect, node)
		if len(t.expect) == 0 {
			t.endGrace()
		}
	}
}

// endGrace ends the start-up grace (once).
func (t *term) endGrace() { t.graceOnce.Do(func() { close(t.graceDone) }) }

// expectListed makes the grace of term t wait for the lists of the live
// media nodes RMS listed, but for those RMS said were down since; when it
// waits for none, the grace is over. It returns how many it waits for.
func (s *Scheduler) expectListed(t *term, nodes []protocol.NodeInfo) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range nodes {
		s.rooms[n.Node] = n.Room
		if n.State == protocol.NodeUp && n.Kind != "vrs" && n.Kind != "mps" && !t.down[n.Node] {
			t.expect[n.Node] = true
		}
	}
	if len(t.expect) == 0 {
		t.endGrace()
	}
	return len(t.expect)
}

// askNodeLists learns from RMS which nodes are live and asks each for its
// conference list now, so that the start-up grace ends as soon as they all
// answered.
func (s *Scheduler) askNodeLists(ctx context.Context, t *term) {
	var ack protocol.NodeListAck
	rctx, cancel := context.WithTimeout(ctx, s.opts.RMSTimeout)
	defer cancel()
	if err := s.bus.Call(rctx, protocol.SubjectRMS(s.opts.Platform), protocol.Header{Type: protocol.RMSNodeListReq}, &ack); err != nil {
		s.log.Warn("no node list from RMS; the start-up grace runs its full length", "err", err)
		return
	}
	if s.expectListed(t, ack.Nodes) == 0 {
		return
	}
	for _, n := range ack.Nodes {
		if n.State == protocol.NodeUp {
			s.tellNode(n.Node, protocol.GetConfListCmd{Type: protocol.MAUMCUGetConfListCmd})
		}
	}
}
