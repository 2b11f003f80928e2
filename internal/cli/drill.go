package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/drill"
)

func init() { register(drillCmd) }

type drillFlags struct {
	conferences, nodes, platforms int
	logLevel                      string
	// processes and rolling run the drills with every service in its
	// own process.
	processes, rolling bool
}

func drillCmd() *cobra.Command {
	var d drillFlags
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
			if d.processes || d.rolling {
				return d.runProcesses(cmd)
			}
			if d.platforms != 1 && d.platforms != 2 {
				return fmt.Errorf("--platforms %d: the drill runs 1 or 2 platforms", d.platforms)
			}
			failures, err := drill.InStack(cmd.Context(), drill.StackOptions{
				Conferences: d.conferences, Nodes: d.nodes, Platforms: d.platforms,
				Log: newLogger(os.Stderr, d.logLevel), Out: cmd.OutOrStdout(),
			})
			if err != nil {
				return err
			}
			if len(failures) > 0 {
				return exitCode(1)
			}
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
func (d *drillFlags) runProcesses(cmd *cobra.Command) error {
	if d.processes == d.rolling {
		return fmt.Errorf("--processes and --rolling are two drills: give one")
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("drill: find the convene binary to run the hosts with: %w", err)
	}
	o := drill.Options{Binary: bin, LogLevel: d.logLevel, Out: cmd.OutOrStdout()}
	if cmd.Flags().Changed("conferences") {
		o.Conferences = d.conferences
	}
	if cmd.Flags().Changed("nodes") {
		o.Nodes = d.nodes
	}
	var res drill.Result
	if d.rolling {
		res, err = drill.Rolling(cmd.Context(), drill.RollingOptions{Options: o})
	} else {
		res, err = drill.Processes(cmd.Context(), o)
	}
	if err != nil {
		return err
	}
	res.Print(cmd.OutOrStdout())
	if !res.Passed() {
		return exitCode(1)
	}
	return nil
}
