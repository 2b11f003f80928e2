package scheduler

import (
	"context"
	"math"
)

// A node back from a hang reports thousands of copies that were restored
// elsewhere meanwhile. Reading each conference to judge each copy would
// cost a store read per copy; most are settled by the stores' list of
// each node instead.

// minPerNode is how many of a node's copies another node must hold for
// its list in the stores to be read at once rather than its conferences
// one by one.
const minPerNode = 16

// olderCopies settles, among copies node reports that the stores do not
// attribute to it, those the stores count on another node that holds a
// newer copy: the reported copy is the older one and ends (000 §9.2,
// duplicate.go), whatever else holds (a legacy conference, a copy the node
// was told to let go, a failed room end it too). It reads the stores' list
// of each other node holding such copies, and the conferences being
// created or restored, once, instead of each conference. It answers the
// copies to end and the rest, to be judged one by one.
func (s *Scheduler) olderCopies(ctx context.Context, node string, l nodeList, nums []string) (ends, rest []string, err error) {
	// Who else holds them, by the lists the nodes sent.
	s.mu.Lock()
	others := make(map[string]map[string]int64, len(s.lists))
	for n, ol := range s.lists {
		if n != node && len(ol.confs) > 0 {
			others[n] = ol.confs
		}
	}
	s.mu.Unlock()
	idle := s.inflight.not(append([]string(nil), nums...))
	want := make(map[string]bool, len(idle))
	for _, e := range idle {
		want[e] = true
	}
	holder := make(map[string]string, len(want))
	byNode := map[string][]string{}
	hold := func(n, e string, t int64) {
		if _, ok := holder[e]; !ok && t > 0 {
			holder[e] = n
			byNode[n] = append(byNode[n], e)
		}
	}
	for n, confs := range others {
		// Walk the smaller of the two.
		if len(confs) < len(want) {
			for e, t := range confs {
				if want[e] {
					hold(n, e, t)
				}
			}
		} else {
			for e := range want {
				if t, hosts := confs[e]; hosts {
					hold(n, e, t)
				}
			}
		}
	}
	// What the stores count on each of those nodes, and what is being
	// created or restored now (judged one by one).
	counted := make(map[string]bool, len(holder))
	creating := map[string]bool{}
	for _, w := range s.dr.stores() {
		for n, held := range byNode {
			if len(held) < minPerNode {
				continue
			}
			on, err := w.st.NodeConferences(ctx, n)
			if err != nil {
				return nil, nil, err
			}
			for _, e := range on {
				if holder[e] == n {
					counted[e] = true
				}
			}
		}
		c, err := w.st.CreatingSince(ctx, math.MaxInt64)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range c {
			creating[e] = true
		}
	}
	for _, e := range nums {
		n, held := holder[e]
		if !held || !counted[e] || creating[e] || l.confs[e] > others[n][e] {
			rest = append(rest, e)
			continue
		}
		ends = append(ends, e)
	}
	return ends, rest, nil
}
