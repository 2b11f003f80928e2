package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/bench"
)

func init() { register(benchCmd) }

// benchCommands are the benchmarks other files add.
var benchCommands = []func() *cobra.Command{benchCreateCmd}

func benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Convene on this machine",
	}
	for _, f := range benchCommands {
		cmd.AddCommand(f())
	}
	return cmd
}

type createBench struct {
	bench.Create
	stores                 []string
	logLevel               string
	cpuProfile, memProfile string
	apiURL, token, domain  string // an outside platform to load instead
}

func benchCreateCmd() *cobra.Command {
	var b createBench
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create conferences through the full path: API, scheduler, store, node ACK",
		Long: `Creates conferences through the whole path: HTTP API, bus to the
scheduler, licence check and count in the store, RMS, the node's ACK, the
store again. Everything runs in this process on loopback; the store is the
embedded one, a redis-server this command starts, or both. The load comes
from one kept-alive HTTP/1.1 connection per worker, written and read
directly: a light client leaves the machine to the platform.

By default the workers create as fast as they can (a closed loop): each
starts its next create when the last one is answered. With --rate N the
creates are offered at N per second on a fixed schedule instead, spread
over the same workers; latency is then counted from when a create was due,
not from when a worker got to it, so a stall shows as latency for every
create that fell due during it, not only for those in flight.

With --api the load goes, from this process, to a platform running in
another (convene serve): nothing is started here, the conferences are
created for --domain (default demo) with --token (default
$CONVENE_TOKEN, else the token file serve wrote), and the measure is the
client's alone. Give that
platform's domain a licence and its nodes room for warm-up plus count
conferences.

Prints creates/s, latency percentiles and store round trips per create.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if b.Rate < 0 {
				return fmt.Errorf("--rate %d: give creates per second, or 0 for as fast as possible", b.Rate)
			}
			tuneGC()
			b.Log = newLogger(os.Stderr, b.logLevel)
			stop, err := bench.StartCPUProfile(b.cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			defer bench.WriteAllocProfile(cmd.ErrOrStderr(), b.memProfile)
			if b.apiURL != "" {
				res, err := b.runRemote(cmd.Context(), cmd.OutOrStdout())
				if err != nil {
					return err
				}
				res.Print(cmd.OutOrStdout())
				if res.Refused() > 0 {
					return exitCode(1)
				}
				return nil
			}
			failed := false
			for _, s := range b.stores {
				res, err := b.Run(cmd.Context(), s, cmd.OutOrStdout())
				if err != nil {
					return err
				}
				res.Print(cmd.OutOrStdout())
				failed = failed || res.Refused() > 0
			}
			if failed {
				return exitCode(1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&b.Count, "count", 20000, "conferences to create (timed)")
	f.IntVar(&b.Warmup, "warmup", 1000, "conferences created first, not timed")
	f.IntVar(&b.Concurrency, "concurrency", 32, "creates in flight at once")
	f.IntVar(&b.Rate, "rate", 0, "creates/s offered on a fixed schedule; 0: as fast as the workers go")
	f.IntVar(&b.Nodes, "nodes", 3, "simulated media nodes")
	f.StringSliceVar(&b.stores, "store", []string{"embedded", "redis"}, "stores to run against: embedded, redis")
	f.StringVar(&b.RedisURL, "redis", "", "use this Redis instead of starting a redis-server")
	f.StringVar(&b.logLevel, "log-level", "error", "log level of the services")
	f.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	f.StringVar(&b.memProfile, "memprofile", "", "write an allocation profile of the run to this file")
	f.StringVar(&b.apiURL, "api", "", "load the platform whose API is at this URL (http://host:port) instead of one started here")
	f.StringVar(&b.token, "token", "", "with --api: an API token that may create conferences (default $CONVENE_TOKEN, else the file "+apiTokenFile+")")
	f.StringVar(&b.domain, "domain", "", "with --api: the user domain of the conferences (default demo)")
	return cmd
}

// runRemote loads a platform that runs in another process, through its
// API at b.apiURL.
func (b *createBench) runRemote(ctx context.Context, out io.Writer) (*bench.CreateResult, error) {
	u, err := url.Parse(b.apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--api %q: give the API's address as http://host:port or https://host:port", b.apiURL)
	}
	token := firstNonEmpty(b.token, os.Getenv("CONVENE_TOKEN"))
	if token == "" {
		data, err := os.ReadFile(filepath.FromSlash(apiTokenFile))
		if err != nil {
			return nil, fmt.Errorf("--api needs a token that may create conferences: pass --token, set CONVENE_TOKEN, or run this where `convene serve` wrote %s", apiTokenFile)
		}
		token = strings.TrimSpace(string(data))
	}
	return b.RunRemote(ctx, u, token, firstNonEmpty(b.domain, "demo"), out)
}
