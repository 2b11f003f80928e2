// Package audit checks a platform's invariants (SPEC §4): every conference
// runs on exactly one live node or waits for a restore with a reason;
// licence counts equal the conferences they count; the store's indexes
// agree with its conferences; no node hosts a conference the store does not
// attribute to it. The fault tests, `convene drill` and `convene bench
// failover` use it.
//
// It imports internal/store, internal/protocol and internal/license only.
package audit

import (
	"context"
	"fmt"
	"sort"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// Input is what the audit compares the store with.
type Input struct {
	// Platform whose conferences are checked (their realplatformmoid).
	Platform string
	// Domains whose licences and lists are checked.
	Domains []string
	// Live says which nodes are up (RMS's view).
	Live map[string]bool
	// Hosted is what each node really hosts, by node id.
	Hosted map[string][]string
}

// Report is what the audit found.
type Report struct {
	Conferences int
	Running     int
	Pending     int
	Creating    int
	// Violations, each a sentence; empty when every invariant holds.
	Violations []string
}

// OK reports whether every invariant holds.
func (r Report) OK() bool { return len(r.Violations) == 0 }

func (r Report) String() string {
	s := fmt.Sprintf("%d conferences: %d running, %d pending-restore, %d creating", r.Conferences, r.Running, r.Pending, r.Creating)
	if r.OK() {
		return s + "; every invariant holds"
	}
	s += fmt.Sprintf("; %d violations:", len(r.Violations))
	for i, v := range r.Violations {
		if i == 20 {
			s += fmt.Sprintf("\n  ... and %d more", len(r.Violations)-20)
			break
		}
		s += "\n  " + v
	}
	return s
}

// Check reads the store and compares. Creating conferences are transient
// and only counted; the caller decides whether there should be none.
func Check(ctx context.Context, st *store.Store, in Input) (Report, error) {
	var r Report
	confs, err := st.AllConferences(ctx)
	if err != nil {
		return r, err
	}
	bad := func(format string, args ...any) { r.Violations = append(r.Violations, fmt.Sprintf(format, args...)) }
	hostedBy := map[string][]string{} // e164 -> nodes hosting it
	for node, l := range in.Hosted {
		for _, e := range l {
			hostedBy[e] = append(hostedBy[e], node)
		}
	}
	byE164 := make(map[string]protocol.Conference, len(confs))
	counts := map[string]license.Limits{}
	for _, c := range confs {
		byE164[c.E164] = c
		if counts[c.Domain] == nil {
			counts[c.Domain] = license.Limits{}
		}
		if cl, err := license.ClassOf(c.Scale, c.Resolution); err == nil {
			counts[c.Domain][cl.String()]++
		}
		if c.RealPlatform != in.Platform {
			continue
		}
		r.Conferences++
		hosts := hostedBy[c.E164]
		switch c.State {
		case protocol.StateRunning:
			r.Running++
			switch {
			case c.Legacy:
				// A legacy node's conference is never moved: it stays
				// attributed to its node whatever becomes of it.
			case !in.Live[c.Node]:
				bad("%s is running on %q, which is not a live node", c.E164, c.Node)
			case !contains(hosts, c.Node):
				bad("%s is running on %s, which does not host it", c.E164, c.Node)
			}
			if len(hosts) > 1 {
				bad("%s is hosted by %d nodes: %v", c.E164, len(hosts), hosts)
			}
		case protocol.StatePendingRestore:
			r.Pending++
			if c.Reason == "" {
				bad("%s is pending-restore without a reason", c.E164)
			}
		case protocol.StateCreating:
			r.Creating++
		default:
			bad("%s is in unknown state %q", c.E164, c.State)
		}
	}
	for node, l := range in.Hosted {
		for _, e := range l {
			c, ok := byE164[e]
			switch {
			case !ok:
				bad("node %s hosts %s, which the store does not know", node, e)
			case c.Node != node && c.State != protocol.StateCreating:
				bad("node %s hosts %s, which the store attributes to %q", node, e, c.Node)
			}
		}
	}
	for _, d := range in.Domains {
		u, err := st.License(ctx, d)
		if err != nil {
			return r, err
		}
		for _, cl := range license.All() {
			if got, want := u.InUse[cl.String()], counts[d][cl.String()]; got != want {
				bad("domain %s counts %d conferences of class %s; %d exist", d, got, cl, want)
			}
		}
		states, err := st.DomainStates(ctx, d)
		if err != nil {
			return r, err
		}
		for e, s := range states {
			c, ok := byE164[e]
			if !ok {
				bad("domain %s lists %s, which does not exist", d, e)
			} else if c.State != s {
				bad("domain %s lists %s as %s; it is %s", d, e, s, c.State)
			}
		}
		for _, c := range confs {
			if c.Domain == d {
				if _, ok := states[c.E164]; !ok {
					bad("%s is missing from domain %s's list", c.E164, d)
				}
			}
		}
	}
	sort.Strings(r.Violations)
	return r, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
