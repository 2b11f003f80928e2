package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/store"
)

// BenchmarkBulkRestore moves 1,000 running conferences from one node to
// another the way a node's loss does, in bulk: pend, begin, commit.
func BenchmarkBulkRestore(b *testing.B) {
	e, err := store.StartEmbedded("")
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{URL: e.URL()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.PublishDomain(ctx, store.DomainInfo{Moid: "acme", Name: "acme", Used: true}, license.Limits{"8_720p": 2000}); err != nil {
		b.Fatal(err)
	}
	nums := make([]string, 1000)
	for i := range nums {
		nums[i] = fmt.Sprintf("66%05d", i)
		if _, err := s.Reserve(ctx, reservation("acme", nums[i])); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Commit(ctx, store.Placement{E164: nums[i], Node: "n0", Room: "r1"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	from := "n0"
	for i := 0; b.Loop(); i++ {
		to := fmt.Sprintf("n%d", (i+1)%2)
		if _, _, err := s.Pend(ctx, from, "node lost", nums, nil); err != nil {
			b.Fatal(err)
		}
		starts, err := s.BeginRestores(ctx, to, "r2", nums)
		if err != nil || starts[0].Err != nil {
			b.Fatal(err, starts[0].Err)
		}
		ps := make([]store.Placement, len(nums))
		for j, n := range nums {
			ps[j] = store.Placement{E164: n, Node: to, IP: "10.0.0.1", PID: "7", Room: "r2", RealPlatform: "p1"}
		}
		if errs, err := s.CommitRestores(ctx, ps); err != nil || errs[0] != nil {
			b.Fatal(err, errs[0])
		}
		from = to
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "µs/conference")
}
