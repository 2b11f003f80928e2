package cli

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
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
			ok, err := runTakeover(cmd.Context(), cmd, n, nodes, logLevel)
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

func runTakeover(ctx context.Context, cmd *cobra.Command, n, nodes int, logLevel string) (bool, error) {
	out := cmd.OutOrStdout()
	p, err := startPair(ctx, nodes, n, n*2, newLogger(os.Stderr, logLevel))
	if err != nil {
		return false, err
	}
	defer p.stop()
	loader := createBench{concurrency: 32}
	errs, err := loader.driveDomain(ctx, p.clientA, "tenant-a", n, nil)
	if err != nil {
		return false, err
	}
	if len(errs) > 0 {
		return false, fmt.Errorf("booking on A: %d refused, first: %w", len(errs), errs[0])
	}

	// Watch B: PMS's notice that A failed, and the scheduler's running
	// notices for A's conferences.
	var (
		mu      sync.Mutex
		noticed time.Time
		running = map[string]time.Time{}
		wake    = make(chan struct{}, 1)
	)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	s1, err := p.b.Bus.Subscribe(protocol.SubjectPlatformNotify, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var ntf protocol.PlatformStateNtf
		if m.Decode(&ntf) != nil {
			return
		}
		for _, mi := range ntf.Masters {
			if mi.Platform == "plat-a" && mi.State == protocol.PlatformAbnormal {
				mu.Lock()
				if noticed.IsZero() {
					noticed = time.Now()
				}
				mu.Unlock()
				poke()
			}
		}
	}))
	if err != nil {
		return false, err
	}
	defer s1.Unsubscribe()
	s2, err := p.b.Bus.Subscribe(protocol.SubjectCMNotifications, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		if m.Type != protocol.MAUConfStateNtf {
			return
		}
		var ntf protocol.ConfStateNtf
		if m.Decode(&ntf) == nil && ntf.State == protocol.StateRunning {
			mu.Lock()
			if _, ok := running[ntf.E164]; !ok {
				running[ntf.E164] = time.Now()
			}
			mu.Unlock()
			poke()
		}
	}))
	if err != nil {
		return false, err
	}
	defer s2.Unsubscribe()
	_ = p.b.Bus.Flush(ctx)

	crashed := time.Now()
	p.a.Crash()
	deadline := time.After(2 * time.Minute)
	for {
		mu.Lock()
		got := len(running)
		mu.Unlock()
		if got >= n {
			break
		}
		select {
		case <-wake:
		case <-deadline:
			return false, fmt.Errorf("only %d of %d conferences of A run on B after 2 minutes", got, n)
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	mu.Lock()
	lat := make([]time.Duration, 0, len(running))
	var last time.Time
	for _, t := range running {
		lat = append(lat, t.Sub(noticed))
		if t.After(last) {
			last = t
		}
	}
	at := noticed
	mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Fprintf(out, "bench takeover: platform A crashed with %d running conferences; backup B has %d nodes\n", n, nodes)
	fmt.Fprintf(out, "  PMS notice       %s after the crash (A's PMS missed 4 polls of 250 ms)\n", ms(at.Sub(crashed)))
	fmt.Fprintf(out, "  all on B         %s after the PMS notice\n", ms(last.Sub(at)))
	fmt.Fprintf(out, "  per conference   p50 %s  p99 %s after the notice\n", ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]))
	runningNow, problems, err := p.audit(ctx, p.b)
	if err != nil {
		return false, err
	}
	if len(problems) > 0 || runningNow != n {
		fmt.Fprintf(out, "  audit            %d running, %d problems; first: %v\n", runningNow, len(problems), first3(problems))
		return false, nil
	}
	fmt.Fprintf(out, "  audit            %d conferences running on B; every invariant holds\n", runningNow)
	return true, nil
}

func first3(l []string) []string {
	if len(l) > 3 {
		return l[:3]
	}
	return l
}
