package cli

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/bench"
	"github.com/convene/convene/internal/protocol"
)

func init() { benchCommands = append(benchCommands, benchBreakoutCmd) }

type breakoutBench struct {
	bench.Breakout
	logLevel   string
	cpuProfile string
}

func benchBreakoutCmd() *cobra.Command {
	var b breakoutBench
	cmd := &cobra.Command{
		Use:   "breakout",
		Short: "Breakout rooms: connect users over WebSocket, start, move, stop with a countdown",
		Long: `Runs a platform in this process with a breakout-service instance beside
it, creates a conference and connects N users to it over WebSocket (user 1
is the host). Then, as the host:

  start      N users in R rooms (one START_NOTIFY to every user, in the
             form --notify asks for: compact, each user's own entry and
             the rooms, or full, the seed's whole plan to every user)
  moves      M moves, each user to its preset room (one
             SET_USER_BREAKOUT_ROOM_NOTIFY to every user per move); a move
             goes once every user heard the one --window moves before
  countdown  a stop with a countdown (its STOP_NOTIFY to every user)
  end        the countdown runs out (the final STOP_NOTIFY, delay 0)

For each phase it prints the notification fan-out latency, p50 and p99,
from the moment the host sent the request (the countdown's deadline for
the end) to each user's receipt. It ends with a check that every user is
back in the main room and that the media node holds the audio plan the
state implies.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGC()
			stop, err := bench.StartCPUProfile(b.cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			b.Log = newLogger(os.Stderr, b.logLevel)
			ok, err := b.Run(cmd.Context(), cmd.OutOrStdout())
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
	f.IntVar(&b.Users, "users", 1000, "users connected over WebSocket")
	f.IntVar(&b.Rooms, "rooms", 50, "breakout rooms")
	f.IntVar(&b.Moves, "moves", 1000, "moves of users to their preset rooms")
	f.IntVar(&b.Window, "window", 1, "moves whose notifications may be on their way at once (1: each move waits until every user heard the one before)")
	f.DurationVar(&b.Delay, "countdown", 2*time.Second, "countdown of the stop (whole seconds)")
	f.StringVar(&b.Notify, "notify", protocol.NotifyCompact, "form of the start notify the users ask for: compact or full (the seed's)")
	f.StringVar(&b.Store, "store", "embedded", "embedded or redis (a redis-server this command starts)")
	f.StringVar(&b.logLevel, "log-level", "error", "log level of the services")
	f.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	return cmd
}
