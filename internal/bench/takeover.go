package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// Takeover is `convene bench takeover`: platform A fails with n running
// conferences on nodes media nodes a platform; the time until all run on
// its backup B is measured. False when the audit after it fails.
func Takeover(ctx context.Context, out io.Writer, n, nodes int, log *slog.Logger) (bool, error) {
	p, err := StartPair(ctx, nodes, n, n*2, log)
	if err != nil {
		return false, err
	}
	defer p.Stop()
	loader := Loader{Concurrency: 32}
	errs, err := loader.DriveDomain(ctx, p.ClientA, "tenant-a", n, nil)
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
	s1, err := p.B.Bus.Subscribe(protocol.SubjectPlatformNotify, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
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
	s2, err := p.B.Bus.Subscribe(protocol.SubjectCMNotifications, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
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
	_ = p.B.Bus.Flush(ctx)

	crashed := time.Now()
	p.A.Crash()
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
	fmt.Fprintf(out, "  PMS notice       %s after the crash (A's PMS missed 4 polls of 250 ms)\n", Ms(at.Sub(crashed)))
	fmt.Fprintf(out, "  all on B         %s after the PMS notice\n", Ms(last.Sub(at)))
	fmt.Fprintf(out, "  per conference   p50 %s  p99 %s after the notice\n", Ms(lat[len(lat)/2]), Ms(lat[len(lat)*99/100]))
	runningNow, problems, err := p.Audit(ctx, p.B)
	if err != nil {
		return false, err
	}
	if len(problems) > 0 || runningNow != n {
		fmt.Fprintf(out, "  audit            %d running, %d problems; first: %v\n", runningNow, len(problems), First3(problems))
		return false, nil
	}
	fmt.Fprintf(out, "  audit            %d conferences running on B; every invariant holds\n", runningNow)
	return true, nil
}
