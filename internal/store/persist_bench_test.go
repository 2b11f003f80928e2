package store

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
)

// BenchmarkDurable40kConferences fills a durable embedded server with
// 40,000 conferences through the store's create path, then reports:
//   - pause-µs: how long a compaction stops every command (the switch to
//     a new log, under the runner's exclusive lock);
//   - copy-under-lock-ms: what the pause would be if the snapshot were
//     taken from the live server under that lock instead;
//   - compaction-ms: the background compaction, start to finish;
//   - restart-ms: a restart (load, replay, fresh snapshot);
//   - snapshot-MB: the snapshot's size.
//
// go test -run '^$' -bench Durable40k -benchtime 3x ./internal/store/
func BenchmarkDurable40kConferences(b *testing.B) {
	const n = 40000
	ctx := context.Background()
	dir := b.TempDir()
	e, err := StartEmbeddedWith(EmbeddedOptions{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { e.Close() }()
	s, err := Open(ctx, Options{URL: e.URL(), BatchWorkers: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = n
	}
	if _, err := s.PublishDomain(ctx, DomainInfo{Moid: "acme", Name: "acme", Used: true}, limits); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				e164, err := s.Reserve(ctx, Reservation{
					Conf: protocol.Conference{Name: "weekly", Domain: "acme", Platform: "p1", RealPlatform: "p1", Scale: 8, Resolution: "720p",
						DurationMinutes: 60, Invited: []string{"mt1", "mt2"}, EndTime: time.Now().Add(time.Hour).UnixMilli()},
					Class: license.Class{Scale: 8, Resolution: "720p"}, Numbering: Numbering{Platform: "p1", Segment: "66", Digits: 6},
				})
				if err == nil {
					node := fmt.Sprintf("node-%d", w%8)
					_, err = s.Commit(ctx, Placement{E164: e164, Node: node, IP: "10.0.0.1", PID: "1", Room: "r1", RealPlatform: "p1"})
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	if b.Failed() {
		return
	}

	// What a stop-the-world copy would cost.
	e.r.mu.Lock()
	t0 := time.Now()
	err = dumpServer(e.m, &dumper{w: bufio.NewWriter(io.Discard)})
	copyUnderLock := time.Since(t0)
	e.r.mu.Unlock()
	if err != nil {
		b.Fatal(err)
	}

	var pause, compaction time.Duration
	b.ResetTimer()
	for range b.N {
		before := e.p.stats().Rewrites
		t0 := time.Now()
		e.r.mu.Lock()
		e.p.mu.Lock()
		e.p.switchLog()
		e.p.mu.Unlock()
		e.r.mu.Unlock()
		pause = max(pause, time.Since(t0))
		for e.p.stats().Rewrites == before {
			if e.p.failed() != nil {
				b.Fatal(e.p.failed())
			}
			time.Sleep(time.Millisecond)
		}
		compaction = max(compaction, time.Since(t0))
	}
	b.StopTimer()
	e.p.mu.Lock()
	snap := e.p.base
	e.p.mu.Unlock()
	e.Close()
	t0 = time.Now()
	e, err = StartEmbeddedWith(EmbeddedOptions{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	restart := time.Since(t0)
	b.ReportMetric(float64(pause.Microseconds()), "pause-µs")
	b.ReportMetric(float64(copyUnderLock.Milliseconds()), "copy-under-lock-ms")
	b.ReportMetric(float64(compaction.Milliseconds()), "compaction-ms")
	b.ReportMetric(float64(restart.Milliseconds()), "restart-ms")
	b.ReportMetric(float64(snap)/(1<<20), "snapshot-MB")
}
