package scheduler

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// restorer is one term's recovery bookkeeping: per pending conference,
// when to try again and which node failed it last; which nodes RMS last
// said are down, and how many times RMS spoke of each; the restore batches
// under way; and an epoch that moves on whenever something may have
// changed what every node's conference list is compared with (a room
// failed or recovered). A node's next list after either moves is compared
// with the stores in full.
//
// Lock order: mu, then the loads' lock; the Scheduler's mu is never taken
// while mu is held.
type restorer struct {
	kick     chan struct{}
	interval time.Duration
	backoff  time.Duration
	// batches holds a place per restore batch under way.
	batches chan struct{}
	epoch   atomic.Uint64

	mu    sync.Mutex
	next  map[string]time.Time
	tries map[string]int
	avoid map[string]string
	down  map[string]bool
	heard map[string]uint64
	// singles are the nodes that know no batch messages.
	singles singles
}

const maxRestoreBackoff = 30 * time.Second

// restoreBatch is the most conferences one restore request to a node
// carries: one store script run begins them, one request restores them,
// one script run records the outcome.
const restoreBatch = 500

func newRestorer(o Options) *restorer {
	return &restorer{
		kick: make(chan struct{}, 1), interval: o.RestoreInterval, backoff: o.RestoreBackoff,
		batches: make(chan struct{}, max(2, (o.RestoreConcurrency+restoreBatch-1)/restoreBatch)),
		next:    map[string]time.Time{}, tries: map[string]int{}, avoid: map[string]string{}, down: map[string]bool{}, heard: map[string]uint64{},
	}
}

// dueOf keeps the numbers whose restore is due at now.
func (r *restorer) dueOf(e164s []string, now time.Time) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := e164s[:0:0]
	for _, e := range e164s {
		if !now.Before(r.next[e]) {
			out = append(out, e)
		}
	}
	return out
}

func (r *restorer) failed(e164, node string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failedLocked(e164, node)
}

func (r *restorer) failedLocked(e164, node string) time.Duration {
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

// failedMany is failed for many numbers, the same node to avoid for each.
func (r *restorer) failedMany(e164s []string, node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range e164s {
		r.failedLocked(e, node)
	}
}

func (r *restorer) done(e164 string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.next, e164)
	delete(r.tries, e164)
	delete(r.avoid, e164)
}

// nodeState records RMS's word on a node.
func (r *restorer) nodeState(node string, down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if down {
		r.down[node] = true
	} else {
		delete(r.down, node)
	}
	r.heard[node]++
}

// nodeNews answers whether RMS last said node is down, and how many times
// RMS spoke of it this term.
func (r *restorer) nodeNews(node string) (down bool, heard uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.down[node], r.heard[node]
}

// recovery is the term's restorer, or nil when standing by.
func (s *Scheduler) recovery() *restorer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restore
}

// kickRestore asks for a restore pass now.
func (s *Scheduler) kickRestore() {
	r := s.recovery()
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
	select {
	case <-t.graceDone:
	case <-t.ctx.Done():
		return
	}
	r := s.recovery()
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

// pendingIn is a store's conferences due for a restore.
type pendingIn struct {
	w     where
	e164s []string
}

// restorePass restores what is pending and due, in bulk: one GET_RES_REQ
// for the pass; each conference placed on the least-loaded offered node
// with room, as creates are; then, per store and target node, batches of
// at most restoreBatch conferences, each one store script run, one
// request to the node (MAU_MCU_RESTORECONFS_REQ) and one script run for
// the outcome.
func (s *Scheduler) restorePass(t *term, r *restorer) {
	ctx := t.ctx
	if s.dr.ownDown() || !s.lease.held() {
		return // switched over (the backups restore), or not sure to be active
	}
	// The restore data source is the service platforms' stores (000 §9.1).
	now := time.Now()
	var todo []pendingIn
	total := 0
	for _, w := range s.dr.servedStores() {
		pending, err := w.st.Pending(ctx)
		if err != nil {
			s.log.Warn("restore pass: could not read pending conferences", "platform", w.platform, "err", err)
			continue
		}
		due := s.inflight.not(r.dueOf(pending, now))
		if len(due) > 0 {
			todo = append(todo, pendingIn{w, due})
			total += len(due)
		}
	}
	s.act.restorePasses.Add(1)
	if total == 0 {
		return
	}
	var offer protocol.GetResAck
	rctx, cancel := context.WithTimeout(ctx, s.opts.RMSTimeout)
	err := s.bus.Call(rctx, protocol.SubjectRMS(s.opts.Platform), protocol.GetResReq{Type: protocol.RMSGetResReq, Exclude: s.abnormalRooms()}, &offer)
	cancel()
	if err != nil || len(offer.MCU) == 0 {
		for _, p := range todo {
			r.failedMany(p.e164s, "")
		}
		s.log.Warn("restore pass: no media node to restore on; retrying with backoff", "pending", total, "err", err)
		return
	}
	for _, p := range todo {
		r.mu.Lock()
		pl, noRoom := s.placeAll(offer.MCU, p.e164s, func(e string) string { return r.avoid[e] })
		for _, e := range noRoom {
			r.failedLocked(e, "")
		}
		r.mu.Unlock()
		if len(noRoom) > 0 {
			s.log.Warn("restore pass: the offered nodes are full; retrying with backoff", "platform", p.w.platform, "conferences", len(noRoom))
		}
		if !s.dispatch(t, r, p.w, pl, lostNode{}) {
			return
		}
	}
}

// placement is where conferences go: per node, in the order the nodes
// were first picked.
type placement struct {
	order  []string
	nodes  map[string]protocol.Server
	placed map[string][]string
}

// placeAll puts each conference on the least-loaded offered node with room,
// as creates are placed, passing over the node avoid names for it unless
// it is the only one with room; noRoom are those no node had room for.
func (s *Scheduler) placeAll(offer []protocol.Server, e164s []string, avoid func(e164 string) string) (pl placement, noRoom []string) {
	pl = placement{nodes: map[string]protocol.Server{}, placed: map[string][]string{}}
	for _, e := range e164s {
		node, ok := s.loads.pickAvoiding(offer, avoid(e))
		if !ok {
			noRoom = append(noRoom, e)
			continue
		}
		if _, seen := pl.nodes[node.Node]; !seen {
			pl.nodes[node.Node] = node
			pl.order = append(pl.order, node.Node)
		}
		pl.placed[node.Node] = append(pl.placed[node.Node], e)
	}
	return pl, noRoom
}

// lostNode names the node whose running conferences a restore moves
// straight to their new nodes, and why; zero for pending conferences. For
// the conferences of several lost nodes (a failed room), from names each
// one's node and node is empty.
type lostNode struct {
	node, reason string
	from         map[string]string
}

// dispatch restores placed conferences in batches of at most
// restoreBatch, one node's after another's in turn so that every node
// works at once, as many batches at once as the restorer allows. It
// answers false when the term ended first; what it did not start is given
// back.
func (s *Scheduler) dispatch(t *term, r *restorer, w where, pl placement, lost lostNode) bool {
	for _, n := range pl.order {
		s.inflight.setMany(pl.placed[n], true)
	}
	left := make(map[string][]string, len(pl.placed))
	for n, l := range pl.placed {
		left[n] = l
	}
	for more := true; more; {
		more = false
		for _, n := range pl.order {
			list := left[n]
			if len(list) == 0 {
				continue
			}
			batch := list[:min(restoreBatch, len(list))]
			left[n] = list[len(batch):]
			more = more || len(left[n]) > 0
			select {
			case r.batches <- struct{}{}:
			case <-t.ctx.Done():
				// Not started: not counted, not under way.
				left[n] = list
				for m, l := range left {
					s.loads.add(m, -len(l))
					s.inflight.setMany(l, false)
				}
				return false
			}
			node := pl.nodes[n]
			t.life.Go(func() {
				defer func() { <-r.batches }()
				defer s.inflight.setMany(batch, false)
				s.restoreBatch(t, r, w, node, batch, lost)
			})
		}
	}
	return true
}

// restoreBatch restores conferences onto node (000 §1.2): pending-restore
// (or, for a lost node's, running there) → creating on node → (the node's
// answer) running, or back to pending-restore for a later pass. The state
// is checked at each step, so a conference a node report synced back to
// running meanwhile is left alone. The loads counted one conference on
// node for each.
func (s *Scheduler) restoreBatch(t *term, r *restorer, w where, node protocol.Server, e164s []string, lost lostNode) {
	bg := context.Background()
	var starts []store.RestoreStart
	var err error
	if !lost.moving() {
		starts, err = w.st.BeginRestores(bg, node.Node, node.Room, e164s)
	} else {
		starts, err = s.moveRestores(bg, w, lost, node, e164s)
	}
	if err != nil {
		rest := e164s[len(starts):]
		s.log.Warn("restores could not start", "node", node.Node, "conferences", len(rest), "err", err)
		s.loads.add(node.Node, -len(rest))
		if lost.moving() {
			// Still running on the lost node: pending-restore, for the
			// restore pass.
			s.pendLost(bg, w, lost, rest)
		} else {
			r.failedMany(rest, "")
		}
	}
	began := make(map[string]store.RestoreStart, len(starts))
	confs := make([]protocol.Conference, 0, len(starts))
	legacy := 0
	for _, st := range starts {
		if st.Err != nil {
			s.loads.add(node.Node, -1)
			switch {
			case lost.moving() && errors.Is(st.Err, store.ErrLegacy):
				legacy++ // legacy conferences are never moved (000 §12)
			case lost.moving():
			case !errors.Is(st.Err, store.ErrStateConflict) && !errors.Is(st.Err, store.ErrConfNotFound):
				r.failed(st.E164(), "")
				s.log.Warn("restore could not start", "e164", st.E164(), "err", st.Err)
			}
			continue
		}
		began[st.E164()] = st
		confs = append(confs, st.Conf)
	}
	if lost.moving() {
		s.movedOff(w, lost, confs, legacy)
	}
	if len(confs) == 0 || s.dead.Load() {
		return
	}
	ack, err := s.askRestores(t.ctx, node.Node, confs)
	if s.dead.Load() {
		return
	}
	asked := make([]string, len(confs))
	for i := range confs {
		asked[i] = confs[i].E164
	}
	if err != nil {
		e := nodeError(node.Node, err)
		if !isNack(err) {
			s.nodeSilentMany(node.Node, asked)
		}
		s.failRestores(w, r, node.Node, asked, node.Node, "restore failed: "+e.Message)
		s.m.ops.WithLabelValues("restore", e.Code).Add(float64(len(asked)))
		s.log.Info("restores failed; will retry", "node", node.Node, "conferences", len(asked), "code", e.Code)
		return
	}
	answer := make(map[string]protocol.NodeConfResult, len(ack.Results))
	for _, res := range ack.Results {
		answer[res.E164] = res
	}
	var ok []store.Placement
	var refused, unanswered []string
	for _, e := range asked {
		res, answered := answer[e]
		switch {
		case !answered:
			unanswered = append(unanswered, e)
		case res.ErrCode != "":
			refused = append(refused, e)
		default:
			ok = append(ok, store.Placement{E164: e, Node: node.Node, IP: ack.IP, PID: ack.PID, Room: node.Room, RealPlatform: s.opts.Platform})
		}
	}
	if len(unanswered) > 0 {
		// The node may host them all the same: it lets them go, and picks
		// pass over it until it answers again.
		s.letGoMany(node.Node, unanswered)
		s.silenced(node.Node, unanswered[0])
		s.failRestores(w, r, node.Node, unanswered, node.Node, "restore failed: media node "+node.Node+" did not answer for it")
	}
	if len(refused) > 0 {
		s.failRestores(w, r, node.Node, refused, node.Node, "restore failed: media node "+node.Node+" refused it")
		s.m.ops.WithLabelValues("restore", protocol.ErrNodeRejected).Add(float64(len(refused)))
		s.log.Info("media node refused restores; will retry elsewhere", "node", node.Node, "conferences", len(refused), "first", answer[refused[0]].ErrCode)
	}
	if len(ok) == 0 {
		return
	}
	errs, err := w.st.CommitRestores(bg, ok)
	if err != nil {
		s.log.Warn("restores acknowledged but not all recorded", "node", node.Node, "err", err)
	}
	byE164 := make(map[string]*protocol.Conference, len(confs))
	for i := range confs {
		byE164[confs[i].E164] = &confs[i]
	}
	var unrecorded []string
	done := make([]*protocol.Conference, 0, len(ok))
	for i, p := range ok {
		if i >= len(errs) || errs[i] != nil {
			unrecorded = append(unrecorded, p.E164)
			continue
		}
		c := byE164[p.E164]
		c.State, c.Node, c.Room, c.NodeIP, c.NodePID = protocol.StateRunning, node.Node, node.Room, ack.IP, ack.PID
		c.RealPlatform = s.opts.Platform
		done = append(done, c)
	}
	if len(unrecorded) > 0 {
		// Hosted but not counted: the copy goes.
		s.loads.add(node.Node, -len(unrecorded))
		s.letGoMany(node.Node, unrecorded)
		s.log.Warn("restores acknowledged but not recorded; the node lets them go", "node", node.Node, "conferences", len(unrecorded))
	}
	s.restored(w, r, began, done)
}

// restored is everything after restores were recorded: the old copies go
// first (make before break: the copy on the old node, if it still runs, as
// in a failed room or on a node that froze, goes now that the new one
// runs), gathered with other batches' into one release per old node
// (oldCopies); the conferences' control, monitors, registry entry and CM
// notice follow.
func (s *Scheduler) restored(w where, r *restorer, began map[string]store.RestoreStart, done []*protocol.Conference) {
	bg := context.Background()
	old := map[string][]string{}
	for _, c := range done {
		if prev := began[c.E164].Prev; prev != "" && prev != c.Node {
			old[prev] = append(old[prev], c.E164)
		}
	}
	for prev, l := range old {
		s.oldCopies.add(prev, l)
	}
	for _, c := range done {
		r.done(c.E164)
		s.hosts(c.Node, c.E164)
		s.ctl.add(c.E164, w.platform)
		if began[c.E164].Monitored {
			s.stopMonitorsOf(bg, w, c.E164, "the conference moved to another media node")
		}
		s.reportRunning(c)
		s.notifyCMOf(w.platform, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: c.E164, Domain: c.Domain, State: protocol.StateRunning, Node: c.Node})
	}
	s.m.ops.WithLabelValues("restore", "ok").Add(float64(len(done)))
}

// failRestores puts conferences whose restore onto node failed back to
// pending-restore and schedules their retry, away from avoid when set.
func (s *Scheduler) failRestores(w where, r *restorer, node string, e164s []string, avoid, reason string) {
	s.loads.add(node, -len(e164s))
	errs, err := w.st.FailRestores(context.Background(), node, reason, e164s)
	if err != nil {
		s.log.Warn("could not record failed restores; the sweep settles them", "node", node, "err", err)
	}
	for i, e := range errs {
		if e != nil && !errors.Is(e, store.ErrStateConflict) && !errors.Is(e, store.ErrConfNotFound) {
			s.log.Warn("could not record a failed restore", "e164", e164s[i], "err", e)
		}
	}
	r.failedMany(e164s, avoid)
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

// underWay holds the creates and restores under way here: the checks that
// settle conferences leave these alone. The zero value is ready to use.
type underWay struct {
	mu sync.Mutex
	m  map[string]bool
}

func (u *underWay) set(e164 string, on bool) {
	u.setMany([]string{e164}, on)
}

// setMany is set for many numbers under one lock.
func (u *underWay) setMany(e164s []string, on bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = make(map[string]bool)
	}
	for _, e := range e164s {
		if on {
			u.m[e] = true
		} else {
			delete(u.m, e)
		}
	}
}

// not keeps the numbers with no create or restore under way here; it
// reuses e164s.
func (u *underWay) not(e164s []string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := e164s[:0]
	for _, e := range e164s {
		if !u.m[e] {
			out = append(out, e)
		}
	}
	return out
}

func (u *underWay) has(e164 string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.m[e164]
}
