package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
)

// Token is the API token of the platforms benchmarks start.
const Token = "bench-token-0123456789"

// Target is an API for the benchmark's own load generator (rawCreator).
type Target struct {
	Addr, Token string
	TLS         bool
}

// Loader creates conferences with Concurrency workers.
type Loader struct{ Concurrency int }

// DriveDomain creates n conferences of domain through client, recording
// each latency in lat when given.
func (l Loader) DriveDomain(ctx context.Context, client *apiclient.Client, domain string, n int, lat []time.Duration) ([]error, error) {
	return l.Drive(ctx, client, nil, 0, domain, n, lat)
}

// Drive creates n conferences of domain with l.Concurrency workers,
// through gen when given and client otherwise. With rate > 0, create i is
// due at start + i/rate and its latency counts from then.
func (l Loader) Drive(ctx context.Context, client *apiclient.Client, gen *Target, rate int, domain string, n int, lat []time.Duration) ([]error, error) {
	var (
		next atomic.Int64
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range l.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var raw *rawCreator
			if gen != nil {
				var err error
				if raw, err = newRawCreator(gen.Addr, gen.Token, domain); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				raw.tls = gen.TLS
				defer raw.close()
			}
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if rate > 0 {
					t0 = start.Add(time.Duration(i) * time.Second / time.Duration(rate))
					if d := time.Until(t0); d > 0 {
						time.Sleep(d)
					}
				}
				var err error
				if raw != nil {
					err = raw.create(ctx)
				} else {
					_, err = client.CreateConference(ctx, apiclient.CreateConferenceRequest{
						Name: "bench", Domain: domain, Scale: 8, Resolution: "720p", DurationMinutes: 120,
					})
				}
				if lat != nil {
					lat[i] = time.Since(t0)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs, ctx.Err()
}

// WaitNodes waits up to 10 s until RMS has n nodes up.
func WaitNodes(ctx context.Context, st *stack.Stack, n int) error {
	return pollUntil(ctx, 10*time.Second, fmt.Sprintf("the %d simulated nodes did not register within 10s", n), func() bool {
		up := 0
		for _, node := range st.RMS.Nodes() {
			if node.State == protocol.NodeUp {
				up++
			}
		}
		return up >= n
	})
}

// WaitGraceOver waits until the stack's active scheduler ended its start-up
// grace (it made a restore pass, which it makes only after): a node lost
// during the grace waits for its end before it is restored, and a bench
// that timed that would time the grace.
func WaitGraceOver(ctx context.Context, st *stack.Stack) error {
	return pollUntil(ctx, 30*time.Second, "the scheduler's start-up grace did not end within 30s", func() bool {
		sc := st.ActiveScheduler()
		return sc != nil && sc.Activity().RestorePasses > 0
	})
}

// pollUntil checks cond every 20 ms until it holds (nil), ctx ends (its
// error) or limit passed (an error saying failure).
func pollUntil(ctx context.Context, limit time.Duration, failure string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New(failure)
}
