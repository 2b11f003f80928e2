package resources

import "time"

// A fresh RMS knows no node until their next heartbeats, while another
// instance of the platform's RMS (a rolling restart runs two) knows them
// all: the fresh one's answer, if it came first, would refuse a create
// ("no media node has registered") or list no node. So, for its fresh
// term after Start — a heartbeat deadline (HeartbeatInterval ×
// MissedHeartbeats), within which every live node beats, and at most
// freshCap — it holds back:
//   - an answer to GET_RES_REQ that would refuse for want of any known
//     node, until it hears of one (then it offers what it knows);
//   - its answer to RMS_NODELIST_REQ, until the term ends, so that the
//     list it gives is whole.
//
// A single RMS answers as before, only later by at most its fresh term.

// freshCap bounds the fresh term whatever the heartbeat settings.
const freshCap = time.Second

// freshPoll is how often a held answer looks again.
const freshPoll = 10 * time.Millisecond

// awaitFirstNode waits, while RMS is fresh and knows no node, a moment
// for one to register; it reports whether to look again (false once RMS
// knows a node, its fresh term ended or it stops).
func (s *Service) awaitFirstNode() bool {
	if !time.Now().Before(s.fresh) {
		return false
	}
	s.mu.RLock()
	known := len(s.nodes)
	s.mu.RUnlock()
	if known > 0 {
		return false
	}
	t := time.NewTimer(freshPoll)
	defer t.Stop()
	select {
	case <-s.stop:
		return false
	case <-t.C:
		return true
	}
}

// awaitFresh waits until the fresh term ends, or RMS stops.
func (s *Service) awaitFresh() {
	d := time.Until(s.fresh)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.stop:
	case <-t.C:
	}
}
