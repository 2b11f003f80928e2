package e2e

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/stack"
)

// BenchmarkMemoryPerConference measures the process memory each running
// conference holds: the live heap after a full collection, before and
// after the conferences were created, divided by their number. The
// process runs the embedded bus, RMS, the scheduler, the registry, the API
// and three simulated nodes; the store is a redis-server outside it
// (store=redis) or the embedded one inside it (store=embedded).
//
//	B/conf           everything
//	nodes-B/conf     the simulated nodes' share (their conference tables)
//	platform-B/conf  the rest
//
// Run it with
//
//	go test -run '^$' -bench MemoryPerConference -benchtime 1x ./internal/e2e/
func BenchmarkMemoryPerConference(b *testing.B) {
	for _, kind := range []string{"redis", "embedded"} {
		for _, n := range []int{10000, 40000} {
			b.Run(fmt.Sprintf("store=%s/conferences=%d", kind, n), func(b *testing.B) {
				for range b.N {
					memoryPerConference(b, kind, n)
				}
			})
		}
	}
}

func memoryPerConference(b *testing.B, kind string, n int) {
	const nodes = 3
	cfg := testConfig(n)
	// The defaults' timings, not the tests' quick ones.
	cfg.Scheduler, cfg.RMS = config.Scheduler{}, config.RMS{}
	cfg.Defaults()
	url := ""
	if kind == "redis" {
		url = redistest.Start(b, redistest.Options{}).URL()
	}
	ctx := context.Background()
	st, err := stack.Start(ctx, stack.Options{
		Config: cfg, Redis: url, Listen: "127.0.0.1:0", NATSListen: "none",
		SimNodes: nodes, SimCapacity: n,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Stop(context.Background())
	for deadline := time.Now().Add(10 * time.Second); len(st.RMS.Nodes()) < nodes; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the simulated nodes did not register")
		}
	}
	before := liveHeap()

	var (
		next, failed atomic.Int64
		firstErr     atomic.Value
		wg           sync.WaitGroup
	)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for int(next.Add(1)) <= n {
				if _, err := st.Scheduler.Create(ctx, protocol.CreateConfReq{Name: "memory", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 600}); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d creates failed, first: %v", f, n, firstErr.Load())
	}
	// The scheduler keeps each node's last conference list: let every
	// node report the full one before measuring.
	for _, node := range st.Nodes {
		if err := node.ReportConfList(); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	loaded := liveHeap()
	for _, node := range st.Nodes {
		node.Kill()
	}
	withoutNodes := liveHeap()

	per := func(v uint64) float64 { return float64(v) / float64(n) }
	total := per(sub(loaded, before))
	nodeShare := per(sub(loaded, withoutNodes))
	b.ReportMetric(total, "B/conf")
	b.ReportMetric(nodeShare, "nodes-B/conf")
	b.ReportMetric(total-nodeShare, "platform-B/conf")
}

// liveHeap is the heap still in use after a full collection.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
