package cli

import (
	"context"
	"fmt"
	"sort"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/store"
)

// The drill's verdict is a pure function of what it measured after each
// step: which conferences had to run, which ran (by number, tenant and
// licence class), how many live copies of each the nodes hosted, what the
// audit said, and any step that did not happen. A conference lost,
// doubled, changed, left waiting or appearing from nowhere fails the
// drill, and so does a count that is right by accident: identity is
// checked, not only numbers.

// confIdent is what makes a conference the same one across a fault.
type confIdent struct{ Domain, Class string }

// census is the conferences at one moment, by number.
type census map[string]confIdent

func (c census) clone() census {
	out := make(census, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

// measure is what the drill counted after one step.
type measure struct {
	Step string
	// Want is what must run after the step; Running what the store holds
	// running; Waiting what it holds in another state (number → state).
	Want    census
	Running census
	Waiting map[string]string
	// Copies is how many live nodes host each number.
	Copies map[string]int
	// Audit is the audit's complaint; "" when every invariant held.
	Audit string
}

// judge lists what is wrong with one step.
func judge(m measure) []string {
	var out []string
	add := func(format string, args ...any) {
		out = append(out, m.Step+": "+fmt.Sprintf(format, args...))
	}
	for _, num := range sortedKeys(m.Want) {
		want := m.Want[num]
		got, running := m.Running[num]
		switch {
		case running && got != want:
			add("conference %s is now of %s class %s; it was booked for %s class %s", num, got.Domain, got.Class, want.Domain, want.Class)
		case running:
		case m.Waiting[num] != "":
			add("conference %s is left %s", num, m.Waiting[num])
		default:
			add("conference %s was lost", num)
			continue
		}
		switch n := m.Copies[num]; {
		case n == 0:
			add("conference %s runs on no live node", num)
		case n > 1:
			add("conference %s runs on %d nodes at once", num, n)
		}
	}
	for _, num := range sortedKeys(m.Running) {
		if _, ok := m.Want[num]; !ok {
			add("conference %s runs but was never booked (or was ended)", num)
		}
	}
	if m.Audit != "" {
		add("audit: %s", m.Audit)
	}
	return out
}

// verdict judges every step, with the failures of steps that did not
// happen, and answers the failures and the drill's exit status.
func verdict(steps []measure, other []string) (failures []string, exit int) {
	failures = append(failures, other...)
	for _, m := range steps {
		failures = append(failures, judge(m)...)
	}
	if len(failures) > 0 {
		return failures, 1
	}
	return nil, 0
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// takeCensus reads what the store holds for the given tenants (all when
// none): running conferences by identity, the others by state.
func takeCensus(ctx context.Context, st *store.Store, domains ...string) (census, map[string]string, error) {
	confs, err := st.AllConferences(ctx)
	if err != nil {
		return nil, nil, err
	}
	keep := map[string]bool{}
	for _, d := range domains {
		keep[d] = true
	}
	running, waiting := census{}, map[string]string{}
	for _, c := range confs {
		if len(keep) > 0 && !keep[c.Domain] {
			continue
		}
		if c.State != protocol.StateRunning {
			waiting[c.E164] = c.State
			continue
		}
		running[c.E164] = identOf(c)
	}
	return running, waiting, nil
}

func identOf(c protocol.Conference) confIdent {
	class := fmt.Sprintf("%d_%s", c.Scale, c.Resolution)
	if cl, err := license.ClassOf(c.Scale, c.Resolution); err == nil {
		class = cl.String()
	}
	return confIdent{Domain: c.Domain, Class: class}
}

// liveCopies counts, per number, the live simulated nodes of the stacks
// hosting it.
func liveCopies(stacks ...*stack.Stack) map[string]int {
	out := map[string]int{}
	for _, st := range stacks {
		if st == nil {
			continue
		}
		for _, n := range st.Nodes {
			if !n.Running() {
				continue
			}
			for _, c := range n.Conferences() {
				out[c.E164]++
			}
		}
	}
	return out
}

// measureStep reads one step's measure from a store (for the tenants
// given, all when none) and the stacks' nodes.
func measureStep(ctx context.Context, step string, want census, st *store.Store, audit string, stacks []*stack.Stack, domains ...string) measure {
	m := measure{Step: step, Want: want.clone(), Copies: liveCopies(stacks...), Audit: audit}
	running, waiting, err := takeCensus(ctx, st, domains...)
	if err != nil {
		m.Audit = fmt.Sprintf("reading the store: %v", err)
		return m
	}
	m.Running, m.Waiting = running, waiting
	return m
}
