package cli

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/bench"
)

type scaleBench struct {
	bench.Scale
	logLevel string
}

func init() { benchCommands = append(benchCommands, benchScaleCmd) }

func benchScaleCmd() *cobra.Command {
	b := scaleBench{}
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "A platform of many nodes and conferences: create latency as it fills, memory, then a crash, a freeze and a room failure",
		Long: `Starts one platform in this process with --nodes simulated media nodes
spread over --rooms server rooms, and fills it with --conferences running
conferences through the HTTP API. On the way it times --sample creates
(in three batches, counted in the load) as it reaches 10%, 50% and 100%
of the load and prints their p50 and p99 (each the median of the three
batches'), the process's CPU time per timed create (the whole platform,
its nodes and the load generator, all in this process: a figure other
work on the machine moves much less than latency), and whether p99 at
100% stays within 20% of p99 at 10%. Before
each timed sample the platform is left alone for --settle (default: one
conference-list interval of the nodes and a second), so that what the
fill left behind (the nodes' lists of their new conferences, compared
with the store) is not counted in the creates that follow.

Then memory: live heap after a collection and the process's resident
size, per running conference, and per conference added from 10% to 100%
(the cost of a conference apart from the platform's fixed cost), that
last one also by owner, from Go's heap profile: the embedded store, the
simulated nodes (both hold a copy of every conference in this process),
the scheduler, the bus, RMS, the API.

Then, one after another on the full platform:

  crash         the most loaded node dies (its bus connection closes)
  freeze, thaw  the most loaded live node hangs (heartbeats stop, the
                connection stays); once its conferences run elsewhere it
                comes back
  room failure  an operator fails the room hosting the most conferences
                (POST /v1/rooms/{moid}/fail); its conferences move to the
                other rooms

each with its detection, the time until all its conferences run again
(at most --wait), the time until no conference is hosted by two nodes,
and an audit: every invariant holds, and the conferences running are the
very ones that ran before. It exits 1 when an audit fails or a conference
is lost; a p99 that does not stay flat is printed as FAIL, a measure of
this machine at this moment, and does not change the exit status.

With --cpuprofile FILE it writes four CPU profiles: FILE.create10,
FILE.create50 and FILE.create100 of each point's timed creates, and
FILE.failures of the crash, the freeze and the room failure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := b.Validate(); err != nil {
				return err
			}
			tuneGC()
			b.Log = newLogger(os.Stderr, b.logLevel)
			res, err := b.Run(cmd.Context(), cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if !res.OK() {
				return exitCode(1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&b.Nodes, "nodes", 1000, "simulated media nodes")
	f.IntVar(&b.Rooms, "rooms", 2, "server rooms the nodes are spread over (at least 2: one fails)")
	f.IntVar(&b.Conferences, "conferences", 100000, "running conferences at full load")
	f.IntVar(&b.Concurrency, "concurrency", 32, "creates in flight at once")
	f.IntVar(&b.Sample, "sample", 6000, "timed creates at each of 10%, 50% and 100% of the load, in three batches")
	f.DurationVar(&b.Settle, "settle", 0, "pause before each timed sample; 0: the nodes' conference-list interval and a second")
	f.DurationVar(&b.Wait, "wait", 2*time.Minute, "how long each failure's conferences have to run again before its audit")
	f.StringVar(&b.Store, "store", "embedded", "embedded or redis (a redis-server this command starts)")
	f.StringVar(&b.logLevel, "log-level", "error", "log level of the services")
	f.StringVar(&b.MemProfile, "memprofile", "", "write a heap profile at full load (after a collection) to `FILE`")
	f.StringVar(&b.CPUProfile, "cpuprofile", "", "write CPU profiles of the timed creates at each point and of the failures to `FILE`.create10, .create50, .create100 and .failures")
	return cmd
}
