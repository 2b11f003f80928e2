package scheduler

import (
	"context"
	"sort"
	"strconv"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// A failed room's conferences are restored together: every node of the
// room, read from every store, placed in one pass over one offer, so that
// each target node gets its share in batches (restoreBatch) rather than a
// few conferences per lost node. A lost node alone is the same with one
// node.

// lostIn is what one store holds of lost nodes' conferences.
type lostIn struct {
	w     where
	lost  lostNode
	e164s []string
}

// lostConfs reads, in every possible-service store, the conferences the
// store puts on nodes; a store that puts none there is left out.
func (s *Scheduler) lostConfs(ctx context.Context, nodes []string, reason string) []lostIn {
	var out []lostIn
	for _, w := range s.dr.stores() {
		in := lostIn{w: w, lost: lostNode{reason: reason}}
		if len(nodes) == 1 {
			in.lost.node = nodes[0]
		} else {
			in.lost.from = map[string]string{}
		}
		for _, node := range nodes {
			e164s, err := w.st.NodeConferences(ctx, node)
			if err != nil {
				s.log.Error("could not read a lost node's conferences; the periodic checks will", "node", node, "platform", w.platform, "err", err)
				continue
			}
			if in.lost.from == nil {
				in.e164s = e164s
				continue
			}
			for _, e := range e164s {
				if _, seen := in.lost.from[e]; !seen {
					in.lost.from[e] = node
					in.e164s = append(in.e164s, e)
				}
			}
		}
		if len(in.e164s) > 0 {
			out = append(out, in)
		}
	}
	return out
}

// moving reports whether the conferences run on lost nodes (rather than
// wait pending-restore).
func (l lostNode) moving() bool {
	return l.node != "" || l.from != nil
}

// nodeOf is the lost node a conference runs on.
func (l lostNode) nodeOf(e164 string) string {
	if l.from != nil {
		return l.from[e164]
	}
	return l.node
}

// byNode groups conferences by their lost node, the nodes in order.
func (l lostNode) byNode(e164s []string) (order []string, groups map[string][]string) {
	if l.from == nil {
		return []string{l.node}, map[string][]string{l.node: e164s}
	}
	groups = map[string][]string{}
	for _, e := range e164s {
		n := l.from[e]
		if _, seen := groups[n]; !seen {
			order = append(order, n)
		}
		groups[n] = append(groups[n], e)
	}
	sort.Strings(order)
	return order, groups
}

// name says in a log which node the conferences run on, or how many.
func (l lostNode) name() string {
	if l.from == nil {
		return l.node
	}
	nodes := map[string]bool{}
	for _, n := range l.from {
		nodes[n] = true
	}
	return strconv.Itoa(len(nodes)) + " nodes"
}

// moveRestores begins, in bulk, the restores onto node of conferences
// running on lost nodes (Store.MoveRestores), whichever lost node each
// runs on.
func (s *Scheduler) moveRestores(ctx context.Context, w where, lost lostNode, node protocol.Server, e164s []string) ([]store.RestoreStart, error) {
	if lost.from == nil {
		return w.st.MoveRestores(ctx, lost.node, lost.reason, node.Node, node.Room, e164s)
	}
	from := make([]string, len(e164s))
	for i, e := range e164s {
		from[i] = lost.from[e]
	}
	return w.st.MoveRestoresFrom(ctx, lost.reason, node.Node, node.Room, e164s, from)
}
