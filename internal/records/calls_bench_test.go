package records_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/convene/convene/internal/records"
)

// BenchmarkWriteCalls writes calls as a busy recorder does: batches of
// starts, answers and ends of different calls.
func BenchmarkWriteCalls(b *testing.B) {
	for _, be := range records.Backends {
		b.Run(be.Name, func(b *testing.B) {
			db, err := records.Open(context.Background(), be.URL(b), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			const batch = 500 // calls per batch, each with three steps
			n := 0
			b.ResetTimer()
			for b.Loop() {
				var steps []records.CallStep
				for range batch {
					c := call(fmt.Sprintf("%024x", n*7919), time.Duration(n)*time.Second)
					c.Answer, c.Connected = c.Start.Add(time.Second), true
					end := c
					end.End = c.Answer.Add(time.Minute)
					steps = append(steps, step(records.CallStart, c), step(records.CallAnswer, c), step(records.CallEnd, end))
					n++
				}
				if _, err := db.WriteCalls(context.Background(), records.CallBatch{Steps: steps}, utcBuckets); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}
