package drill

import (
	"fmt"
	"sort"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
)

// A drill's verdict is a pure function of what it measured after each
// step: which conferences had to run, which ran (by number, tenant and
// licence class), how many live copies of each the nodes hosted, what the
// audit said, and any step that did not happen. A conference lost,
// doubled, changed, left waiting or appearing from nowhere fails the
// drill: identity is checked, not only numbers.

// Ident is what makes a conference the same one across a fault.
type Ident struct{ Domain, Class string }

// Census is the conferences at one moment, by number.
type Census map[string]Ident

func (c Census) clone() Census {
	out := make(Census, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

// identOf is a conference's identity.
func identOf(c protocol.Conference) Ident {
	return Ident{Domain: c.Domain, Class: classOf(c.Scale, c.Resolution)}
}

// classOf is the licence class of a scale and resolution.
func classOf(scale int, resolution string) string {
	if cl, err := license.ClassOf(scale, resolution); err == nil {
		return cl.String()
	}
	return fmt.Sprintf("%d_%s", scale, resolution)
}

// Measure is what a drill counted after one step.
type Measure struct {
	Step string
	// Want is what must run after the step; Running what the store holds
	// running; Waiting what it holds in another state (number → state).
	Want    Census
	Running Census
	Waiting map[string]string
	// Copies is how many live nodes host each number.
	Copies map[string]int
	// Audit is the audit's complaint; "" when every invariant held.
	Audit string
}

// Counts are a step's figures: conferences lost, doubled (on two live
// nodes or more), and left pending (in any state but running).
type Counts struct{ Lost, Doubled, Pending int }

// Count sums up a measure.
func (m Measure) Count() Counts {
	var c Counts
	for num := range m.Want {
		_, running := m.Running[num]
		if !running && m.Waiting[num] == "" {
			c.Lost++
		}
	}
	for _, n := range m.Copies {
		if n > 1 {
			c.Doubled++
		}
	}
	c.Pending = len(m.Waiting)
	return c
}

// Judge lists what is wrong with one step.
func Judge(m Measure) []string {
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
			continue
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
	for _, num := range sortedKeys(m.Waiting) {
		if _, ok := m.Want[num]; !ok {
			add("conference %s is %s but was never booked (or was ended)", num, m.Waiting[num])
		}
	}
	for _, num := range sortedKeys(m.Copies) {
		if _, ok := m.Want[num]; !ok && m.Copies[num] > 0 {
			add("conference %s is hosted by %d live nodes but was never booked (or was ended)", num, m.Copies[num])
		}
	}
	if m.Audit != "" {
		add("audit: %s", m.Audit)
	}
	return out
}

// Verdict judges every step, with the failures of steps that did not
// happen, and answers every failure; none means the drill passed.
func Verdict(steps []Measure, other []string) []string {
	failures := append([]string(nil), other...)
	for _, m := range steps {
		failures = append(failures, Judge(m)...)
	}
	return failures
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
