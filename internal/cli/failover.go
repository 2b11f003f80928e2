package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/bench"
)

type failoverBench struct {
	bench.Failover
	sizes    []int
	modes    []string
	logLevel string
}

func init() { benchCommands = append(benchCommands, benchFailoverCmd) }

func benchFailoverCmd() *cobra.Command {
	var b failoverBench
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Kill a media node hosting many conferences; time detection and restore",
		Long: `Loads one simulated media node with N conferences, adds empty nodes,
then takes the loaded node away and measures, on the embedded defaults
(heartbeat 200 ms, 4 missed beats):

  detection      from the node's death to RMS's down notice
  all running    from detection until every conference runs again
  per conf       from detection to each conference's running notice (p50, p99)
  doubled until  freeze only: from the node's return until no conference
                 is hosted by two nodes (its stale copies ended)

A node can die two ways: "crash" (its process dies: its bus connection
closes) and "freeze" (it hangs: heartbeats stop, the connection stays;
then it comes back). --mode both runs each size in both. Every run ends
with an audit of the platform's invariants.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			modes, err := failoverModes(b.modes)
			if err != nil {
				return err
			}
			tuneGC()
			b.Log = newLogger(os.Stderr, b.logLevel)
			failed := false
			for _, n := range b.sizes {
				for _, mode := range modes {
					ok, err := b.Run(cmd.Context(), cmd.OutOrStdout(), mode, n)
					if err != nil {
						return err
					}
					failed = failed || !ok
				}
			}
			if failed {
				return exitCode(1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&b.sizes, "conferences", []int{1000, 10000}, "conferences on the node that dies, comma-separated (one run each)")
	f.IntVar(&b.Targets, "targets", 3, "empty nodes that take the conferences")
	f.StringSliceVar(&b.modes, "mode", []string{"both"}, "how the node dies: crash, freeze or both")
	f.StringVar(&b.Store, "store", "embedded", "embedded or redis (a redis-server this command starts)")
	f.StringVar(&b.logLevel, "log-level", "error", "log level of the services")
	f.StringVar(&b.CPUProfile, "cpuprofile", "", "write a CPU profile of each run's failover (from the death to the audit) to this file, suffixed with the size and mode")
	return cmd
}

// failoverModes expands --mode: crash, freeze, both.
func failoverModes(in []string) ([]string, error) {
	var out []string
	for _, m := range in {
		switch m {
		case "crash", "freeze":
			out = append(out, m)
		case "both":
			out = append(out, "crash", "freeze")
		default:
			return nil, fmt.Errorf("--mode %q: use crash, freeze or both", m)
		}
	}
	return out, nil
}
