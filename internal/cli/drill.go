package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
	processdrill "github.com/convene/convene/internal/drill"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/scheduler"
	"github.com/convene/convene/internal/stack"
)

func init() { register(drillCmd) }

type drill struct {
	conferences int
	nodes       int
	platforms   int
	logLevel    string
	out         io.Writer
	start       time.Time
	// failed are steps that did not happen; steps what was measured after
	// each one. The verdict is judged from both.
	failed []string
	steps  []measure
	// processes and rolling run the drills with every service in its
	// own process (internal/drill).
	processes, rolling bool
}

func drillCmd() *cobra.Command {
	var d drill
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Break a simulated platform on purpose and time how it recovers",
		Long: `Runs a platform on the embedded defaults (two scheduler instances, media
nodes in two server rooms), books conferences, then in turn: kills a media
node, fails a server room, recovers it, and kills the active scheduler.

With --platforms 2, runs platform A and its backup B, each with its own
store, bus, scheduler, RMS, PMS and nodes: fails A under load, lets B take
over, books new conferences for A's tenants on B, brings A back, and ends
some of the moved conferences from A's side.

With --processes, every service runs in its own OS process (convene host
--config), against a real nats-server and redis-server: kills with SIGKILL,
in turn, a media node, the active scheduler, RMS, PMS, the registry, the
API, nats-server and redis-server, starting each again.

With --rolling, two instances of every service run, each in its own
process: each is restarted in turn (SIGTERM) while a client creates and
ends conferences, turning to the other API only when a connection is
refused. It prints failed operations, lost conferences and the longest
pause the client saw.

Prints a timeline with detection and recovery times and audits the
invariants after each step. Exits non-zero if any conference was lost,
doubled, left pending or wrongly counted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGC()
			d.out = cmd.OutOrStdout()
			if d.processes || d.rolling {
				return d.runProcesses(cmd)
			}
			run := d.run
			switch d.platforms {
			case 1:
			case 2:
				run = d.runPlatforms
			default:
				return fmt.Errorf("--platforms %d: the drill runs 1 or 2 platforms", d.platforms)
			}
			if err := run(cmd.Context()); err != nil {
				return err
			}
			if failures, code := verdict(d.steps, d.failed); code != 0 {
				fmt.Fprintf(d.out, "\nDRILL FAILED: %d problems\n", len(failures))
				for _, f := range failures {
					fmt.Fprintln(d.out, "  -", f)
				}
				return exitCode(code)
			}
			fmt.Fprintln(d.out, "\ndrill passed: no conference lost, doubled or left pending")
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&d.conferences, "conferences", 500, "conferences to book")
	f.IntVar(&d.nodes, "nodes", 6, "simulated media nodes, spread over two rooms (with --platforms 2: half on each platform)")
	f.IntVar(&d.platforms, "platforms", 1, "1: faults inside a platform; 2: a platform fails and its backup takes over, then it comes back")
	f.StringVar(&d.logLevel, "log-level", "error", "log level of the services")
	f.BoolVar(&d.processes, "processes", false, "every service in its own process, each killed in turn with SIGKILL (default: 200 conferences, 4 nodes)")
	f.BoolVar(&d.rolling, "rolling", false, "two processes of every service, each restarted in turn under a steady client load (default: 100 conferences, 4 nodes)")
	return cmd
}

// runProcesses runs the drill of --processes or --rolling; the sizes are
// the package's own unless given.
func (d *drill) runProcesses(cmd *cobra.Command) error {
	if d.processes == d.rolling {
		return fmt.Errorf("--processes and --rolling are two drills: give one")
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("drill: find the convene binary to run the hosts with: %w", err)
	}
	o := processdrill.Options{Binary: bin, LogLevel: d.logLevel, Out: d.out}
	if cmd.Flags().Changed("conferences") {
		o.Conferences = d.conferences
	}
	if cmd.Flags().Changed("nodes") {
		o.Nodes = d.nodes
	}
	var res processdrill.Result
	if d.rolling {
		res, err = processdrill.Rolling(cmd.Context(), processdrill.RollingOptions{Options: o})
	} else {
		res, err = processdrill.Processes(cmd.Context(), o)
	}
	if err != nil {
		return err
	}
	res.Print(d.out)
	if !res.Passed() {
		return exitCode(1)
	}
	return nil
}

func (d *drill) config() *config.Config {
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = d.conferences * 2
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

func (d *drill) logf(format string, args ...any) {
	fmt.Fprintf(d.out, "%8.3fs  %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *drill) run(ctx context.Context) error {
	d.start = time.Now()
	st, err := stack.Start(ctx, stack.Options{
		Config: d.config(), Listen: "127.0.0.1:0", NATSListen: "none", Schedulers: 2,
		SimNodes: d.nodes, SimCapacity: d.conferences, Log: newLogger(os.Stderr, d.logLevel),
	})
	if err != nil {
		return err
	}
	defer st.Stop(context.Background())
	if err := waitNodes(ctx, st, d.nodes); err != nil {
		return err
	}
	client := apiclient.New("http://"+st.API.Addr(), "drill-token-0123456789")
	loader := createBench{concurrency: 16}
	errs, err := loader.driveDomain(ctx, client, "drill", d.conferences, nil)
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("booking: %d creates refused, first: %w", len(errs), errs[0])
	}
	d.logf("platform up: %d conferences on %d media nodes in 2 rooms, 2 schedulers (1 active)", d.conferences, d.nodes)
	// What must run from now on: every conference booked, by number,
	// tenant and class, read once booking settled.
	complaint := d.settle(ctx, st, "booked")
	want, _, err := takeCensus(ctx, st.Store)
	if err != nil {
		return err
	}
	if len(want) != d.conferences {
		d.fail("%d conferences run after booking %d", len(want), d.conferences)
	}
	d.check(ctx, "booked", want, st, complaint)

	w, err := watch(st)
	if err != nil {
		return err
	}
	defer w.close()

	// 1. A media node dies.
	victim := busiest(st)
	hosted := len(st.Nodes[victim].Conferences())
	id := st.Nodes[victim].ID()
	t0 := time.Now()
	st.KillNode(victim)
	d.logf("killed media node %s (%d conferences)", id, hosted)
	if det, err := w.waitDown(ctx, id, 10*time.Second); err == nil {
		d.logf("  detected after %s", ms(det.Sub(t0)))
	} else {
		d.fail("node loss not detected: %v", err)
	}
	what := fmt.Sprintf("%d conferences restored on other nodes", hosted)
	d.check(ctx, "node killed", want, st, d.settle(ctx, st, what))
	d.logf("  recovered %s after the kill", ms(time.Since(t0)))

	// 2. A server room fails.
	inRoom := countInRoom(st, "room-a1")
	t0 = time.Now()
	if err := st.PMS.SetRoom("room-a1", protocol.RoomAbnormal, "drill: room failed", true); err != nil {
		return err
	}
	d.logf("failed server room room-a1 (%d conferences in it)", inRoom)
	d.waitFor(ctx, "every conference out of room-a1", func() bool { return countInRoom(st, "room-a1") == 0 })
	d.check(ctx, "room failed", want, st, d.settle(ctx, st, "room-a1's conferences restored in room-a2"))
	d.logf("  recovered %s after the failure", ms(time.Since(t0)))

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
	if moved := diff(before, placement(ctx, st)); moved > 0 {
		d.fail("recovering the room moved %d conferences", moved)
	}
	d.check(ctx, "room recovered", want, st, d.settle(ctx, st, "nothing moved back"))

	// 4. The active scheduler dies: the standby takes over, moves nothing.
	active := st.ActiveScheduler()
	before = placement(ctx, st)
	t0 = time.Now()
	active.Kill()
	d.logf("killed the active scheduler %s", active.ID())
	d.waitFor(ctx, "the standby to take over", func() bool { return st.ActiveScheduler() != nil })
	d.logf("  standby %s active after %s", st.ActiveScheduler().ID(), ms(time.Since(t0)))
	if c, err := client.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: "after takeover", Domain: "drill", Scale: 8, Resolution: "720p", DurationMinutes: 30}); err != nil {
		d.fail("create through the new scheduler: %v", err)
	} else {
		want[c.E164] = identOf(protocol.Conference{Domain: c.Domain, Scale: c.Scale, Resolution: c.Resolution})
		d.logf("  booked a conference through the new scheduler")
	}
	d.waitLooked(ctx, st, "the new scheduler's start-up grace and restore passes", func(scheduler.Activity) bool { return true })
	if moved := diff(before, placement(ctx, st)); moved > 0 {
		d.fail("the takeover moved %d conferences", moved)
	}
	d.check(ctx, "scheduler killed", want, st, d.settle(ctx, st, "takeover moved nothing"))
	return nil
}

// check measures the conferences after a step against those that must
// run, and says at once what is wrong.
func (d *drill) check(ctx context.Context, step string, want census, st *stack.Stack, complaint string) {
	d.record(measureStep(ctx, step, want, st.Store, complaint, []*stack.Stack{st}))
}

func (d *drill) record(m measure) {
	d.steps = append(d.steps, m)
	problems := judge(m)
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
func (d *drill) waitLooked(ctx context.Context, st *stack.Stack, what string, seen func(scheduler.Activity) bool) {
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

func (d *drill) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.failed = append(d.failed, msg)
	d.logf("  FAILED: %s", msg)
}

func (d *drill) waitFor(ctx context.Context, what string, cond func() bool) {
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
func (d *drill) settle(ctx context.Context, st *stack.Stack, what string) string {
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

func diff(a, b map[string]string) int {
	n := 0
	for k, v := range a {
		if b[k] != v {
			n++
		}
	}
	return n
}
