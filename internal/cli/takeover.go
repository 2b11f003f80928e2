package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/bench"
)

func init() { benchCommands = append(benchCommands, benchTakeoverCmd) }

func benchTakeoverCmd() *cobra.Command {
	var (
		n, nodes int
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "takeover",
		Short: "Fail a whole platform with N running conferences; time its backup's takeover",
		Long: `Runs two platforms in this process, A and its backup B, each with its
own embedded store and bus. Books N conferences on A, then crashes A (its
nodes, schedulers and bus die; its store stays, as the copy the backup
reads) and measures, from B's PMS notice that A failed, the time until every
conference of A runs on B, with per-conference p50/p99. Ends with an audit
of both platforms.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGC()
			ok, err := bench.Takeover(cmd.Context(), cmd.OutOrStdout(), n, nodes, newLogger(os.Stderr, logLevel))
			if err != nil {
				return err
			}
			if !ok {
				return exitCode(1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&n, "conferences", 10000, "conferences running on platform A when it fails")
	f.IntVar(&nodes, "nodes", 3, "simulated media nodes per platform")
	f.StringVar(&logLevel, "log-level", "error", "log level of the services")
	return cmd
}
