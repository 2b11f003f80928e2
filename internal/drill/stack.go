package drill

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bench"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/scheduler"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/store"
)

// StackOptions tune the drills that run the platform in this process
// (internal/stack): `convene drill` and `convene drill --platforms 2`.
type StackOptions struct {
	// Conferences to book; Nodes, the simulated media nodes (with two
	// platforms, half on each).
	Conferences, Nodes int
	// Platforms is 1 (faults inside a platform) or 2 (a platform fails
	// and its backup takes over, then it comes back).
	Platforms int
	// Log is the services' logger.
	Log *slog.Logger
	// Out is where the timeline and the verdict go.
	Out io.Writer
}

// InStack runs the drill of o.Platforms platforms in this process, prints
// its timeline and verdict, and answers the failures: none means it
// passed.
func InStack(ctx context.Context, o StackOptions) ([]string, error) {
	d := &stackDrill{StackOptions: o}
	run := d.run
	switch o.Platforms {
	case 1:
	case 2:
		run = d.runPlatforms
	default:
		return nil, fmt.Errorf("the drill runs 1 or 2 platforms, not %d", o.Platforms)
	}
	if err := run(ctx); err != nil {
		return nil, err
	}
	failures := Verdict(d.steps, d.failed)
	if len(failures) > 0 {
		fmt.Fprintf(d.Out, "\nDRILL FAILED: %d problems\n", len(failures))
		for _, f := range failures {
			fmt.Fprintln(d.Out, "  -", f)
		}
		return failures, nil
	}
	fmt.Fprintln(d.Out, "\ndrill passed: no conference lost, doubled or left pending")
	return nil, nil
}

// stackDrill is one run of a drill in this process.
type stackDrill struct {
	StackOptions
	start time.Time
	// failed are steps that did not happen; steps what was measured after
	// each one. The verdict is judged from both.
	failed []string
	steps  []Measure
}

func (d *stackDrill) config() *config.Config {
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = d.Conferences * 2
	}
	c := &config.Config{
		Platforms: []config.Platform{{Moid: "plat-a", Name: "Drill platform", NumberSegment: "66", Rooms: []config.Room{
			{Moid: "room-a1", Name: "Main hall", Type: "main"}, {Moid: "room-a2", Name: "Annex", Type: "secondary"},
		}}},
		Domains: []config.Domain{{Moid: "drill", License: limits}},
		API:     config.API{Tokens: []config.Token{{Name: "drill", Token: "drill-token-0123456789"}}},
	}
	c.Defaults()
	return c
}

func (d *stackDrill) logf(format string, args ...any) {
	fmt.Fprintf(d.Out, "%8.3fs  %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *stackDrill) run(ctx context.Context) error {
	d.start = time.Now()
	st, err := stack.Start(ctx, stack.Options{
		Config: d.config(), Listen: "127.0.0.1:0", NATSListen: "none", Schedulers: 2,
		SimNodes: d.Nodes, SimCapacity: d.Conferences, Log: d.Log,
	})
	if err != nil {
		return err
	}
	defer st.Stop(context.Background())
	if err := bench.WaitNodes(ctx, st, d.Nodes); err != nil {
		return err
	}
	client := apiclient.New("http://"+st.API.Addr(), "drill-token-0123456789")
	loader := bench.Loader{Concurrency: 16}
	errs, err := loader.DriveDomain(ctx, client, "drill", d.Conferences, nil)
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("booking: %d creates refused, first: %w", len(errs), errs[0])
	}
	// The faults start once the scheduler's start-up grace is over: a node
	// lost during it is restored when it ends, and the drill would time
	// the grace.
	if err := bench.WaitGraceOver(ctx, st); err != nil {
		return err
	}
	d.logf("platform up: %d conferences on %d media nodes in 2 rooms, 2 schedulers (1 active)", d.Conferences, d.Nodes)
	// What must run from now on: every conference booked, by number,
	// tenant and class, read once booking settled.
	complaint := d.settle(ctx, st, "booked")
	want, _, err := takeCensus(ctx, st.Store)
	if err != nil {
		return err
	}
	if len(want) != d.Conferences {
		d.fail("%d conferences run after booking %d", len(want), d.Conferences)
	}
	d.check(ctx, "booked", want, st, complaint)

	w, err := bench.Watch(st)
	if err != nil {
		return err
	}
	defer w.Close()

	// 1. A media node dies.
	victim := busiest(st)
	hosted := len(st.Nodes[victim].Conferences())
	id := st.Nodes[victim].ID()
	t0 := time.Now()
	st.KillNode(victim)
	d.logf("killed media node %s (%d conferences)", id, hosted)
	if det, err := w.WaitDown(ctx, id, 10*time.Second); err == nil {
		d.logf("  detected after %s", bench.Ms(det.Sub(t0)))
	} else {
		d.fail("node loss not detected: %v", err)
	}
	what := fmt.Sprintf("%d conferences restored on other nodes", hosted)
	d.check(ctx, "node killed", want, st, d.settle(ctx, st, what))
	d.logf("  recovered %s after the kill", bench.Ms(time.Since(t0)))

	// 2. A server room fails.
	inRoom := countInRoom(st, "room-a1")
	t0 = time.Now()
	if err := st.PMS.SetRoom("room-a1", protocol.RoomAbnormal, "drill: room failed", true); err != nil {
		return err
	}
	d.logf("failed server room room-a1 (%d conferences in it)", inRoom)
	d.waitFor(ctx, "every conference out of room-a1", func() bool { return countInRoom(st, "room-a1") == 0 })
	d.check(ctx, "room failed", want, st, d.settle(ctx, st, "room-a1's conferences restored in room-a2"))
	d.logf("  recovered %s after the failure", bench.Ms(time.Since(t0)))

	// 3. The room comes back: nothing moves.
	before := placement(ctx, st)
	if err := st.PMS.SetRoom("room-a1", protocol.RoomNormal, "", true); err != nil {
		return err
	}
	d.logf("recovered server room room-a1")
	// Nothing must move: wait until the scheduler has seen the room back
	// and run two restore passes since, rather than sleep and hope.
	d.waitLooked(ctx, st, "the scheduler to see room-a1 back", func(a scheduler.Activity) bool {
		return !slices.Contains(a.AbnormalRooms, "room-a1")
	})
	if n := moved(before, placement(ctx, st)); n > 0 {
		d.fail("recovering the room moved %d conferences", n)
	}
	d.check(ctx, "room recovered", want, st, d.settle(ctx, st, "nothing moved back"))

	// 4. The active scheduler dies: the standby takes over, moves nothing.
	active := st.ActiveScheduler()
	before = placement(ctx, st)
	t0 = time.Now()
	active.Kill()
	d.logf("killed the active scheduler %s", active.ID())
	d.waitFor(ctx, "the standby to take over", func() bool { return st.ActiveScheduler() != nil })
	d.logf("  standby %s active after %s", st.ActiveScheduler().ID(), bench.Ms(time.Since(t0)))
	if c, err := client.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: "after takeover", Domain: "drill", Scale: 8, Resolution: "720p", DurationMinutes: 30}); err != nil {
		d.fail("create through the new scheduler: %v", err)
	} else {
		want[c.E164] = identOf(protocol.Conference{Domain: c.Domain, Scale: c.Scale, Resolution: c.Resolution})
		d.logf("  booked a conference through the new scheduler")
	}
	d.waitLooked(ctx, st, "the new scheduler's start-up grace and restore passes", func(scheduler.Activity) bool { return true })
	if n := moved(before, placement(ctx, st)); n > 0 {
		d.fail("the takeover moved %d conferences", n)
	}
	d.check(ctx, "scheduler killed", want, st, d.settle(ctx, st, "takeover moved nothing"))
	return nil
}

// check measures the conferences after a step against those that must
// run, and says at once what is wrong.
func (d *stackDrill) check(ctx context.Context, step string, want Census, st *stack.Stack, complaint string) {
	d.record(measureStep(ctx, step, want, st.Store, complaint, []*stack.Stack{st}))
}

func (d *stackDrill) record(m Measure) {
	d.steps = append(d.steps, m)
	problems := Judge(m)
	for _, p := range problems {
		d.logf("  FAILED: %s", p)
	}
	if len(problems) == 0 {
		d.logf("  %d conferences run, each the one booked, once", len(m.Want))
	}
}

// waitLooked waits until the active scheduler's activity satisfies seen,
// then until it has run two more restore passes: proof that it looked
// at the platform since, which a sleep is not.
func (d *stackDrill) waitLooked(ctx context.Context, st *stack.Stack, what string, seen func(scheduler.Activity) bool) {
	var passes uint64
	d.waitFor(ctx, what, func() bool {
		sc := st.ActiveScheduler()
		if sc == nil {
			return false
		}
		a := sc.Activity()
		passes = a.RestorePasses
		return seen(a)
	})
	d.waitFor(ctx, what+": two restore passes since", func() bool {
		sc := st.ActiveScheduler()
		return sc != nil && sc.Activity().RestorePasses >= passes+2
	})
}

func (d *stackDrill) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.failed = append(d.failed, msg)
	d.logf("  FAILED: %s", msg)
}

func (d *stackDrill) waitFor(ctx context.Context, what string, cond func() bool) {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			d.fail("timed out waiting for %s", what)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle waits until every invariant holds with nothing creating or
// pending, and says so; it answers the audit's complaint when that does
// not happen within 30 s ("" when it does).
func (d *stackDrill) settle(ctx context.Context, st *stack.Stack, what string) string {
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := st.Audit(ctx)
		ok := err == nil && r.OK() && r.Creating == 0 && r.Pending == 0
		if ok {
			d.logf("  audit: %s (%s)", r, what)
			return ""
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return fmt.Sprintf("%s: audit failed: %v", what, err)
			}
			return fmt.Sprintf("%s: %s", what, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// busiest is the index of the simulated node hosting the most conferences.
func busiest(st *stack.Stack) int {
	best, n := 0, -1
	for i, node := range st.Nodes {
		if c := len(node.Conferences()); node.Running() && c > n {
			best, n = i, c
		}
	}
	return best
}

func countInRoom(st *stack.Stack, room string) int {
	n := 0
	for _, node := range st.Nodes {
		if node.Running() && roomOfNode(st, node.ID()) == room {
			n += len(node.Conferences())
		}
	}
	return n
}

func roomOfNode(st *stack.Stack, id string) string {
	for _, n := range st.RMS.Nodes() {
		if n.Node == id {
			return n.Room
		}
	}
	return ""
}

func placement(ctx context.Context, st *stack.Stack) map[string]string {
	confs, err := st.Store.AllConferences(ctx)
	out := map[string]string{}
	if err != nil {
		return out
	}
	for _, c := range confs {
		out[c.E164] = c.Node
	}
	return out
}

// moved counts the conferences of a placed elsewhere in b (or not at all).
func moved(a, b map[string]string) int {
	n := 0
	for k, v := range a {
		if b[k] != v {
			n++
		}
	}
	return n
}

// takeCensus reads what the store holds for the given tenants (all when
// none): running conferences by identity, the others by state.
func takeCensus(ctx context.Context, st *store.Store, domains ...string) (Census, map[string]string, error) {
	confs, err := st.AllConferences(ctx)
	if err != nil {
		return nil, nil, err
	}
	keep := map[string]bool{}
	for _, d := range domains {
		keep[d] = true
	}
	running, waiting := Census{}, map[string]string{}
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
// given, all when none) and the stacks' nodes (their copies of those
// tenants' conferences).
func measureStep(ctx context.Context, step string, want Census, st *store.Store, audit string, stacks []*stack.Stack, domains ...string) Measure {
	m := Measure{Step: step, Want: want.clone(), Copies: liveCopies(stacks...), Audit: audit}
	running, waiting, err := takeCensus(ctx, st, domains...)
	if err != nil {
		m.Audit = fmt.Sprintf("reading the store: %v", err)
		return m
	}
	m.Running, m.Waiting = running, waiting
	if len(domains) > 0 {
		// The nodes also host the other tenants' conferences, which this
		// measure does not judge.
		for num := range m.Copies {
			_, wanted := m.Want[num]
			_, runs := running[num]
			if !wanted && !runs && waiting[num] == "" {
				delete(m.Copies, num)
			}
		}
	}
	return m
}
