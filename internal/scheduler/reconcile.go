package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// nodeList is what the scheduler holds of a node's conference list: the
// last whole list it sent with the deltas since applied, and how it last
// compared with the stores. Its confs map is never changed once stored in
// s.lists (a delta makes a new one), so a copy read under s.mu stays
// valid.
type nodeList struct {
	at      time.Time
	ip, pid string
	room    string
	confs   map[string]int64 // e164 -> the node's create time
	// version is the node's version of the list held (0: a node that does
	// not count them sends every list whole); digest the XOR of
	// protocol.ListEntryHash over confs.
	version uint64
	digest  uint64

	// The last comparison with the stores: when, at which restorer epoch
	// and after how many of RMS's notices about the node, how many
	// conferences this scheduler counted on the node then (loads), and
	// whether it left something for later (a create or restore under way,
	// a conference too fresh to judge).
	compared time.Time
	epoch    uint64
	heard    uint64
	counted  int
	open     bool
}

// listMargin is how much older than a node's list a conference must be for
// its absence from the list to count: a create acknowledged after the list
// was taken is not missing.
const listMargin = time.Second

// manyChanged is how many changes in a node's list are compared with the
// whole list rather than one by one.
const manyChanged = 64

// compareRetry is how soon a comparison the stores could not answer is
// tried again.
const compareRetry = time.Second

// fullCompareEvery bounds how long a node's list goes without a whole
// comparison with the stores, whatever else says nothing changed.
const fullCompareEvery = 30 * time.Second

// handleConfList reconciles the store with what a node really hosts
// (MCU_MAU_CONFLIST_NTF, 000 §9.2):
//   - the store attributes a conference to this node but the node lacks it:
//     creating → leave it; same ip and pid → it ended there, clear it;
//     otherwise (the node restarted) → pending-restore;
//   - the node reports a conference the store does not know → end it there;
//   - the store attributes it to another node → the same conference on two
//     nodes: the older copy ends, and the store follows the newer one
//     (duplicate.go), unless a create or restore is under way;
//   - pending-restore and reported by its node → running again, unless an
//     operator failed its room: then the node is told to release it. A room
//     that failed because all its nodes were lost is disproved by a node
//     reporting from it, so there the conference is adopted.
//
// The copies to end go in one command (MAU_MCU_RELEASECONFS_CMD), whatever
// their number. The list of a node RMS says is down is kept but not
// compared: RMS has the last word on the node, so it adopts nothing and
// its conferences are restored elsewhere; once RMS sees it back, its list
// is compared in full and the copies restored meanwhile end, in one
// command.
//
// It is incremental: the scheduler holds each node's list (deltas keep it
// up to date, see protocol.ConfListNtf) and compares with the stores only
// what changed, unless something may have changed on the stores' side (RMS
// spoke of the node, a room failed or recovered, this scheduler counts
// another number of conferences on the node than before and than it hosts
// (it ended one there whose release the node did not confirm, say), the
// last comparison left something for later) or fullCompareEvery passed:
// then the whole list. A list that changes nothing reads nothing from the
// stores.
func (s *Scheduler) handleConfList(ctx context.Context, m *bus.Msg) {
	var ntf protocol.ConfListNtf
	if err := m.Decode(&ntf); err != nil {
		s.log.Warn("bad conference list", "err", err)
		return
	}
	if s.dead.Load() || !protocol.ValidToken(ntf.Node) || !s.lease.held() {
		return
	}
	t, r := s.currentTerm(), s.recovery()
	if t == nil || r == nil {
		return
	}
	mu := s.nodeLock(ntf.Node)
	mu.Lock()
	defer mu.Unlock()
	l, changed, whole, ok := s.takeList(ntf)
	if !ok {
		// A delta this scheduler cannot apply (it holds no list of that
		// process, or not at a version the delta starts from).
		s.tellNode(ntf.Node, protocol.GetConfListCmd{Type: protocol.MAUMCUGetConfListCmd})
		return
	}
	s.mu.Lock()
	s.rooms[ntf.Node] = ntf.Room
	t.reported(ntf.Node)
	s.mu.Unlock()
	if ntf.Version > 0 && (!ntf.Delta || ntf.Version > ntf.Since) {
		s.tellNode(ntf.Node, protocol.ConfListAck{Type: protocol.MAUMCUConfListAck, PID: ntf.PID, Version: ntf.Version})
	}

	if s.dr.ownDown() {
		// This platform is switched over: its backups run its conferences
		// now; its nodes let theirs go (000 §2.3.1).
		all := make([]string, 0, len(l.confs))
		for e := range l.confs {
			all = append(all, e)
		}
		s.releaseCopies(ntf.Node, all)
		return
	}
	down, heard := r.nodeNews(ntf.Node)
	if down {
		return
	}
	epoch := r.epoch.Load()
	counted := s.loads.get(ntf.Node)
	full := whole || l.open || l.epoch != epoch || l.heard != heard || time.Since(l.compared) >= fullCompareEvery ||
		(counted != l.counted && counted != len(l.confs))
	var open bool
	var err error
	began := time.Now()
	defer func() {
		s.log.Debug("conference list compared", "node", ntf.Node, "whole", full, "changed", len(changed), "conferences", len(l.confs), "took", time.Since(began))
	}()
	switch {
	case full || len(changed) > manyChanged:
		// Many changes (a wave of restores onto the node, the end of its
		// stale copies): the stores' lists of the node and of pending
		// conferences say most of it in two reads.
		open, err = s.compareAll(ctx, ntf, l)
	case len(changed) > 0:
		open, err = s.compareChanged(ctx, ntf, l, changed)
	default:
		return
	}
	if err != nil {
		// Tried again soon, not at the node's next list.
		s.log.Warn("reconcile: could not compare the node's list with the stores; asking for it again", "node", ntf.Node, "err", err)
		open = true
		node := ntf.Node
		time.AfterFunc(compareRetry, func() {
			if s.currentTerm() == t {
				s.tellNode(node, protocol.GetConfListCmd{Type: protocol.MAUMCUGetConfListCmd, Delta: true})
			}
		})
	}
	if full {
		l.compared = time.Now()
	}
	l.epoch, l.heard, l.counted, l.open = epoch, heard, counted, open
	s.mu.Lock()
	if cur, ok := s.lists[ntf.Node]; ok && cur.version == l.version && cur.pid == l.pid {
		cur.compared, cur.epoch, cur.heard, cur.counted, cur.open = l.compared, l.epoch, l.heard, l.counted, l.open
		s.lists[ntf.Node] = cur
	}
	s.mu.Unlock()
}

// takeList applies a node's list to what the scheduler holds of it and
// stores the result. It answers the list, the numbers that changed, and
// whether the whole list must be compared (a list of a process not held
// before). ok is false for a delta that cannot be applied: the whole list
// is needed.
func (s *Scheduler) takeList(ntf protocol.ConfListNtf) (l nodeList, changed []string, whole, ok bool) {
	s.mu.Lock()
	old, had := s.lists[ntf.Node]
	s.mu.Unlock()
	had = had && old.pid == ntf.PID
	if had && ntf.Version > 0 && ntf.Version < old.version {
		// Older than the list held (lists handled out of order): the next
		// one says more.
		return l, nil, false, false
	}
	if ntf.Delta {
		if !had || old.version == 0 || ntf.Since > old.version || old.version > ntf.Version {
			return l, nil, false, false
		}
		l = old
		if len(ntf.Confs)+len(ntf.Removed) > 0 {
			l.confs = make(map[string]int64, len(old.confs)+len(ntf.Confs))
			for e, ct := range old.confs {
				l.confs[e] = ct
			}
			// A delta repeats what changed since the version the node
			// last heard acknowledged: a conference the held list has
			// already is no change. One it ended is, even if the held
			// list never had it (it came and went between two lists):
			// the stores may count it there.
			changed = make([]string, 0, len(ntf.Confs)+len(ntf.Removed))
			for _, c := range ntf.Confs {
				ct, was := l.confs[c.E164]
				if was && ct == c.CreateTime {
					continue
				}
				if was {
					l.digest ^= protocol.ListEntryHash(c.E164, ct)
				}
				l.confs[c.E164] = c.CreateTime
				l.digest ^= protocol.ListEntryHash(c.E164, c.CreateTime)
				changed = append(changed, c.E164)
			}
			for _, e := range ntf.Removed {
				if ct, was := l.confs[e]; was {
					l.digest ^= protocol.ListEntryHash(e, ct)
					delete(l.confs, e)
				}
				changed = append(changed, e)
			}
		}
		if len(l.confs) != ntf.Count || l.digest != ntf.Digest {
			return nodeList{}, nil, false, false
		}
	} else {
		l = old
		l.confs = make(map[string]int64, len(ntf.Confs))
		l.digest = 0
		for _, c := range ntf.Confs {
			if ct, dup := l.confs[c.E164]; dup {
				l.digest ^= protocol.ListEntryHash(c.E164, ct)
			}
			l.confs[c.E164] = c.CreateTime
			l.digest ^= protocol.ListEntryHash(c.E164, c.CreateTime)
		}
		if had {
			for e, ct := range l.confs {
				if oct, was := old.confs[e]; !was || oct != ct {
					changed = append(changed, e)
				}
			}
			for e := range old.confs {
				if _, is := l.confs[e]; !is {
					changed = append(changed, e)
				}
			}
		} else {
			l = nodeList{confs: l.confs, digest: l.digest}
			whole = true
		}
	}
	l.at, l.ip, l.pid, l.room, l.version = time.Now(), ntf.IP, ntf.PID, ntf.Room, ntf.Version
	s.mu.Lock()
	s.lists[ntf.Node] = l
	s.mu.Unlock()
	return l, changed, whole, true
}

// compareAll compares a node's whole list with the stores. It reports
// whether it left something for later.
func (s *Scheduler) compareAll(ctx context.Context, ntf protocol.ConfListNtf, l nodeList) (bool, error) {
	// The possible-service platforms' stores all may attribute conferences
	// to this node (000 §9.2). Only the differences are read: in steady
	// state a node reports just what the stores attribute to it, running.
	attributed := map[string]bool{}
	homeOf := map[string]string{}
	pending := map[string]bool{}
	open := false
	for _, w := range s.dr.stores() {
		mine, err := w.st.NodeConferences(ctx, ntf.Node)
		if err != nil {
			return true, err
		}
		var missing []string
		for _, e := range mine {
			attributed[e] = true
			homeOf[e] = w.platform
			if _, ok := l.confs[e]; !ok {
				missing = append(missing, e)
			}
		}
		if len(mine) > 0 {
			// Which of the node's are waiting for a restore: asked of its
			// own numbers only, never of the whole pending set (after a
			// room failure that set is large, and every node's list would
			// read it all).
			p, err := w.st.PendingAmong(ctx, mine)
			if err != nil {
				return true, err
			}
			for e := range p {
				if homeOf[e] == w.platform {
					pending[e] = true
				}
			}
		}
		if len(missing) > 0 {
			briefs, err := brief(ctx, w, missing)
			if err != nil {
				return true, err
			}
			gone := make([]located, 0, len(briefs))
			for _, c := range briefs {
				gone = append(gone, located{c, w})
			}
			open = s.reconcileMissing(ctx, ntf, gone) || open
		}
	}
	_, manual := s.roomAbnormal(ntf.Room)
	var examine, held []string
	for e := range l.confs {
		if manual || !attributed[e] || pending[e] {
			examine = append(examine, e)
		} else {
			held = append(held, e)
		}
	}
	var ends []string
	if len(examine) > manyChanged {
		var err error
		if ends, examine, err = s.olderCopies(ctx, ntf.Node, l, examine); err != nil {
			return true, err
		}
	}
	if len(examine)+len(ends) > 0 {
		briefs, err := s.briefs(ctx, examine)
		if err != nil {
			return true, err
		}
		open = s.reconcileReported(ctx, ntf, l, examine, briefs, ends) || open
	}
	s.controlReported(ntf.Node, held, homeOf)
	return open, nil
}

// compareChanged compares with the stores only the numbers whose place in
// a node's list changed. It reports whether it left something for later.
func (s *Scheduler) compareChanged(ctx context.Context, ntf protocol.ConfListNtf, l nodeList, changed []string) (bool, error) {
	var added, removed []string
	for _, e := range changed {
		if _, hosts := l.confs[e]; hosts {
			added = append(added, e)
		} else {
			removed = append(removed, e)
		}
	}
	briefs, err := s.briefs(ctx, append(added, removed...))
	if err != nil {
		return true, err
	}
	var gone []located
	for _, e := range removed {
		if b, known := briefs[e]; known && b.c.Node == ntf.Node {
			gone = append(gone, b)
		}
	}
	_, manual := s.roomAbnormal(ntf.Room)
	var examine, held []string
	homeOf := map[string]string{}
	for _, e := range added {
		b, known := briefs[e]
		if manual || !known || b.c.Node != ntf.Node || b.c.State != protocol.StateRunning {
			examine = append(examine, e)
			continue
		}
		held = append(held, e)
		homeOf[e] = b.w.platform
	}
	open := false
	if len(gone) > 0 {
		open = s.reconcileMissing(ctx, ntf, gone)
	}
	if len(examine) > 0 {
		open = s.reconcileReported(ctx, ntf, l, examine, briefs, nil) || open
	}
	s.controlReported(ntf.Node, held, homeOf)
	return open, nil
}

// controlReported takes the control of conferences the node runs where the
// store puts them but that this instance does not hold: a create that
// another instance finished after this one took over (it lost its lease
// mid-create) runs, and its CM must still reach it.
func (s *Scheduler) controlReported(node string, held []string, homeOf map[string]string) {
	missing := s.inflight.not(s.ctl.missing(held))
	for _, e := range missing {
		s.ctl.add(e, homeOf[e])
		s.log.Info("took the control of a conference its node reports", "e164", e, "node", node)
	}
}

func (s *Scheduler) nodeLock(node string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	mu := s.nodeMu[node]
	if mu == nil {
		mu = &sync.Mutex{}
		s.nodeMu[node] = mu
	}
	return mu
}

// located is a conference and the store that holds it.
type located struct {
	c protocol.Conference
	w where
}

// briefChunk is the most conferences one read asks a store for: a read
// of a returning node's tens of thousands of copies is many short ones,
// each within the store's timeout however busy a restore wave keeps it.
const briefChunk = 1000

// brief reads conferences from one store, briefChunk at a time.
func brief(ctx context.Context, w where, e164s []string) (map[string]protocol.Conference, error) {
	if len(e164s) <= briefChunk {
		return w.st.Brief(ctx, e164s)
	}
	out := make(map[string]protocol.Conference, len(e164s))
	for len(e164s) > 0 {
		part := e164s[:min(briefChunk, len(e164s))]
		e164s = e164s[len(part):]
		got, err := w.st.Brief(ctx, part)
		if err != nil {
			return nil, err
		}
		for e, c := range got {
			out[e] = c
		}
	}
	return out, nil
}

// briefs reads conferences from whichever possible-service store holds
// them.
func (s *Scheduler) briefs(ctx context.Context, e164s []string) (map[string]located, error) {
	out := make(map[string]located, len(e164s))
	rest := e164s
	for _, w := range s.dr.stores() {
		if len(rest) == 0 {
			break
		}
		got, err := brief(ctx, w, rest)
		if err != nil {
			return nil, err
		}
		next := rest[:0:0]
		for _, e := range rest {
			if c, ok := got[e]; ok {
				out[e] = located{c, w}
			} else {
				next = append(next, e)
			}
		}
		rest = next
	}
	return out, nil
}

// reconcileMissing handles conferences a store attributes to the node that
// its list lacks. It reports whether it left some for later.
func (s *Scheduler) reconcileMissing(ctx context.Context, ntf protocol.ConfListNtf, missing []located) bool {
	fresh := ntf.SentAtMs - (s.opts.NodeTimeout + listMargin).Milliseconds()
	open := false
	var pend []located
	for _, l := range missing {
		c, w, e := l.c, l.w, l.c.E164
		if c.Node != ntf.Node {
			continue
		}
		// A list taken before the conference was placed on the node (its
		// create, or a restore that moved it there) cannot show it yet.
		if c.State == protocol.StateCreating || c.CreateTime > fresh || c.PlacedAt > fresh || s.inflight.has(e) {
			open = true
			continue
		}
		if c.State != protocol.StateRunning {
			// Pending restore: its node (or room) was lost and the node
			// told to let it go; it waits for its restore, not for this
			// node.
			continue
		}
		if c.NodeIP == ntf.IP && c.NodePID == ntf.PID {
			// The very process that had it running does not: it ended
			// there.
			old, err := w.st.Release(ctx, e, store.ReleaseCond{State: protocol.StateRunning, Node: ntf.Node})
			if err == nil {
				s.log.Info("conference gone from its node: cleared", "e164", e, "node", ntf.Node)
				s.ended(old, ReasonOnNode, false)
			}
			continue
		}
		if c.Legacy {
			continue
		}
		pend = append(pend, l)
	}
	byStore := map[where][]located{}
	for _, l := range pend {
		byStore[l.w] = append(byStore[l.w], l)
	}
	for w, ls := range byStore {
		reason := fmt.Sprintf("media node %s restarted (now pid %s) without it", ntf.Node, ntf.PID)
		nums := make([]string, len(ls))
		for i, l := range ls {
			nums[i] = l.c.E164
		}
		moved, _, err := w.st.Pend(ctx, ntf.Node, reason, nums, nil)
		if err != nil {
			s.log.Warn("reconcile: could not mark conferences pending-restore", "node", ntf.Node, "err", err)
		}
		movedSet := make(map[string]bool, len(moved))
		for _, e := range moved {
			movedSet[e] = true
		}
		s.loads.add(ntf.Node, -len(moved))
		for _, l := range ls {
			if movedSet[l.c.E164] {
				s.notifyCMOf(w.platform, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: l.c.E164, Domain: l.c.Domain, State: protocol.StatePendingRestore, Node: ntf.Node, Reason: reason})
			}
		}
		if len(moved) > 0 {
			s.kickRestore()
		}
	}
	return open
}

// reconcileReported handles what the node says it hosts: the copies to
// end, ends (judged already) among them, go in one command, the
// conferences to adopt in one store run per store. It reports whether it
// left some for later.
func (s *Scheduler) reconcileReported(ctx context.Context, ntf protocol.ConfListNtf, l nodeList, reported []string, briefs map[string]located, ends []string) bool {
	_, abnormal := s.roomAbnormal(ntf.Room) // failed by an operator
	debug := s.log.Enabled(ctx, slog.LevelDebug)
	release := func(e, why string) {
		if debug {
			s.log.Debug("conference released on a node that must not host it", "e164", e, "node", ntf.Node, "why", why)
		}
		ends = append(ends, e)
	}
	open := false
	adopt := map[where][]protocol.Conference{}
	var pend []located
	for _, e := range reported {
		b, known := briefs[e]
		c := b.c
		switch {
		case s.inflight.has(e):
			open = true
		case !known:
			release(e, "the store does not know it")
		case c.Node != ntf.Node:
			if c.State == protocol.StateCreating {
				open = true
			} else {
				s.duplicate(ctx, b, ntf, l.confs[e], abnormal, release)
			}
		case c.State == protocol.StatePendingRestore && abnormal:
			release(e, "its room failed; it is restored elsewhere")
		case c.State == protocol.StatePendingRestore && s.released.told(ntf.Node, e):
			// A restore it did not answer in time, done late: the node
			// was told to let it go and will; it is restored afresh.
			release(e, "a late copy: the node was told to let it go")
		case c.State == protocol.StatePendingRestore:
			adopt[b.w] = append(adopt[b.w], c)
		case c.State == protocol.StateRunning && abnormal && !c.Legacy:
			pend = append(pend, b)
		}
	}
	for _, b := range pend {
		if err := b.w.st.PendOne(ctx, b.c.E164, ntf.Node, "server room "+ntf.Room+" failed"); err == nil {
			s.loads.add(ntf.Node, -1)
			release(b.c.E164, "its room failed")
			s.kickRestore()
		}
	}
	if len(ends) > 0 {
		s.log.Info("conferences released on a node that must not host them", "node", ntf.Node, "conferences", len(ends))
		s.releaseCopies(ntf.Node, ends)
		s.m.ops.WithLabelValues("reconcile-release", "ok").Add(float64(len(ends)))
	}
	for w, confs := range adopt {
		s.adoptReported(ctx, w, ntf, confs)
	}
	return open
}

// adoptReported: pending-restore conferences their node still hosts run
// there again (a short disconnect, a scheduler restart).
func (s *Scheduler) adoptReported(ctx context.Context, w where, ntf protocol.ConfListNtf, confs []protocol.Conference) {
	nums := make([]string, len(confs))
	for i := range confs {
		nums[i] = confs[i].E164
	}
	errs, err := w.st.AdoptMany(ctx, ntf.Node, nums)
	if err != nil {
		s.log.Warn("could not adopt reported conferences", "node", ntf.Node, "err", err)
	}
	r := s.recovery()
	adopted := 0
	for i := range errs {
		c := &confs[i]
		if errs[i] != nil {
			if !errors.Is(errs[i], store.ErrStateConflict) {
				s.log.Warn("could not adopt a reported conference", "e164", c.E164, "err", errs[i])
			}
			continue
		}
		adopted++
		if r != nil {
			r.done(c.E164)
		}
		s.ctl.add(c.E164, w.platform)
		c.State = protocol.StateRunning
		s.reportRunning(c)
		s.notifyCMOf(w.platform, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: c.E164, Domain: c.Domain, State: protocol.StateRunning, Node: ntf.Node, Reason: "reported by its node"})
	}
	s.loads.add(ntf.Node, adopted)
	if adopted > 0 {
		s.log.Info("conferences adopted back from their node's report", "node", ntf.Node, "conferences", adopted)
		s.m.ops.WithLabelValues("adopt", "ok").Add(float64(adopted))
	}
}
