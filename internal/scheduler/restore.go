package scheduler

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// restorer remembers, per pending conference, when to try again and which
// node failed it last.
type restorer struct {
	kick     chan struct{}
	interval time.Duration
	backoff  time.Duration

	mu    sync.Mutex
	next  map[string]time.Time
	tries map[string]int
	avoid map[string]string
}

const maxRestoreBackoff = 30 * time.Second

func newRestorer(o Options) *restorer {
	return &restorer{
		kick: make(chan struct{}, 1), interval: o.RestoreInterval, backoff: o.RestoreBackoff,
		next: map[string]time.Time{}, tries: map[string]int{}, avoid: map[string]string{},
	}
}

func (r *restorer) due(e164 string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !now.Before(r.next[e164])
}

func (r *restorer) failed(e164, node string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries[e164]++
	d := r.backoff << min(r.tries[e164]-1, 10)
	if d > maxRestoreBackoff {
		d = maxRestoreBackoff
	}
	r.next[e164] = time.Now().Add(d)
	if node != "" {
		r.avoid[e164] = node
	}
	return d
}

func (r *restorer) done(e164 string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.next, e164)
	delete(r.tries, e164)
	delete(r.avoid, e164)
}

func (r *restorer) avoiding(e164 string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.avoid[e164]
}

// kickRestore asks for a restore pass now.
func (s *Scheduler) kickRestore() {
	s.mu.Lock()
	r := s.restore
	s.mu.Unlock()
	if r == nil {
		return
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// restoreLoop restores pending conferences when told to and every
// RestoreInterval, once the start-up grace is over.
func (s *Scheduler) restoreLoop(t *term) {
	defer t.wg.Done()
	select {
	case <-t.graceDone:
	case <-t.ctx.Done():
		return
	}
	s.mu.Lock()
	r := s.restore
	s.mu.Unlock()
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	for {
		s.restorePass(t, r)
		select {
		case <-t.ctx.Done():
			return
		case <-r.kick:
		case <-tick.C:
		}
	}
}

// restorePass restores what is pending and due: one GET_RES_REQ for the
// pass, the least-loaded node for each, RestoreConcurrency at once.
func (s *Scheduler) restorePass(t *term, r *restorer) {
	ctx := t.ctx
	if s.ownDown.Load() || !s.holdsLease() {
		return // switched over (the backups restore), or not sure to be active
	}
	// The restore data source is the service platforms' stores (000 §9.1).
	type item struct {
		e164 string
		w    where
	}
	now := time.Now()
	var todo []item
	for _, w := range s.servedStores() {
		pending, err := w.st.Pending(ctx)
		if err != nil {
			s.log.Warn("restore pass: could not read pending conferences", "platform", w.platform, "err", err)
			continue
		}
		s.mu.Lock()
		for _, e := range pending {
			if !s.inflight[e] && r.due(e, now) {
				todo = append(todo, item{e, w})
			}
		}
		s.mu.Unlock()
	}
	s.act.restorePasses.Add(1)
	if len(todo) == 0 {
		return
	}
	var offer protocol.GetResAck
	rctx, cancel := context.WithTimeout(ctx, s.opts.RMSTimeout)
	err := s.bus.Call(rctx, protocol.SubjectRMS(s.opts.Platform), protocol.GetResReq{Type: protocol.RMSGetResReq, Exclude: s.abnormalRooms()}, &offer)
	cancel()
	if err != nil || len(offer.MCU) == 0 {
		for _, it := range todo {
			r.failed(it.e164, "")
		}
		s.log.Warn("restore pass: no media node to restore on; retrying with backoff", "pending", len(todo), "err", err)
		return
	}
	sem := make(chan struct{}, s.opts.RestoreConcurrency)
	for _, it := range todo {
		e, w := it.e164, it.w
		node, ok := s.loads.pickAvoiding(offer.MCU, r.avoiding(e))
		if !ok {
			r.failed(e, "")
			continue
		}
		s.setInflight(e, true)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			s.loads.add(node.Node, -1)
			s.setInflight(e, false)
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer func() { <-sem }()
			defer s.setInflight(e, false)
			s.restoreOne(t, r, w, e, node)
		}()
	}
}

// restoreOne restores one conference onto node (MAU_MCU_RESTORECONF_REQ,
// 000 §1.2): pending-restore → creating on node → (ACK) running. The state
// is checked at each step, so a conference a node report synced back to
// running meanwhile is left alone.
func (s *Scheduler) restoreOne(t *term, r *restorer, w where, e164 string, node protocol.Server) {
	bg := context.Background()
	conf, prev, err := w.st.BeginRestore(bg, e164, node.Node, node.Room)
	if err != nil {
		s.loads.add(node.Node, -1)
		if !errors.Is(err, store.ErrStateConflict) && !errors.Is(err, store.ErrConfNotFound) {
			r.failed(e164, "")
			s.log.Warn("restore could not start", "e164", e164, "err", err)
		}
		return
	}
	if s.dead.Load() {
		return
	}
	var ack protocol.NodeConfAck
	nctx, cancel := context.WithTimeout(t.ctx, s.opts.NodeTimeout)
	err = s.bus.Call(nctx, protocol.SubjectToNode(node.Node), protocol.NodeConfReq{Type: protocol.MAUMCURestoreConfReq, Conf: conf}, &ack)
	cancel()
	if s.dead.Load() {
		return
	}
	if err != nil {
		s.loads.add(node.Node, -1)
		e := nodeError(node.Node, err)
		if !isNack(err) {
			s.nodeSilent(node.Node, e164)
		}
		if ferr := w.st.FailRestore(bg, e164, node.Node, "restore failed: "+e.Message); ferr != nil {
			s.log.Warn("could not record a failed restore", "e164", e164, "err", ferr)
		}
		wait := r.failed(e164, node.Node)
		s.m.op("restore", e)
		s.log.Info("restore failed; will retry", "e164", e164, "node", node.Node, "code", e.Code, "retry-in", wait)
		return
	}
	if _, err := w.st.Commit(bg, store.Placement{
		E164: e164, Node: node.Node, IP: ack.IP, PID: ack.PID, Room: node.Room, RealPlatform: s.opts.Platform,
	}); err != nil {
		s.loads.add(node.Node, -1)
		s.letGo(node.Node, e164)
		s.log.Warn("restore acknowledged but not recorded", "e164", e164, "err", err)
		return
	}
	r.done(e164)
	s.released.forget(node.Node, e164)
	if prev != "" && prev != node.Node {
		// Make before break: the copy on the old node, if it still runs
		// (a failed room, a node that froze), goes now that this one runs.
		s.tellNode(prev, protocol.ConfReq{Type: protocol.MAUMCUReleaseConfCmd, E164: e164})
	}
	if err := s.subscribeControl(e164, w.platform); err != nil {
		s.log.Error("control subscription failed after restore", "e164", e164, "err", err)
	}
	s.stopMonitorsOf(bg, w, e164, "the conference moved to another media node")
	conf.State, conf.Node, conf.Room, conf.NodeIP, conf.NodePID = protocol.StateRunning, node.Node, node.Room, ack.IP, ack.PID
	conf.RealPlatform = s.opts.Platform
	s.reportRunning(&conf)
	s.notifyCMOf(w.platform, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: e164, Domain: conf.Domain, State: protocol.StateRunning, Node: node.Node})
	s.m.op("restore", nil)
}

// stopMonitorsOf ends a conference's monitoring sessions: the node now
// running it streams nothing; the CM is told and may start them again
// (000 §6).
func (s *Scheduler) stopMonitorsOf(ctx context.Context, w where, e164, reason string) {
	mons, err := w.st.Monitors(ctx, e164)
	if err != nil {
		return
	}
	for _, m := range mons {
		if w.st.RemoveMonitor(ctx, e164, m.Addr) != nil {
			continue
		}
		host, port := splitAddr(m.Addr)
		s.notifyCMOf(w.platform, protocol.MonitorStoppedNtf{Type: protocol.MAUMonitorStoppedNtf, E164: e164, IP: host, Port: port, Reason: reason})
	}
}

func (s *Scheduler) setInflight(e164 string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.inflight[e164] = true
	} else {
		delete(s.inflight, e164)
	}
}

func (s *Scheduler) isInflight(e164 string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight[e164]
}
