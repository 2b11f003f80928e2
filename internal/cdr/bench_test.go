package cdr_test

import (
	"context"
	"testing"
	"time"

	"github.com/convene/convene/internal/cdr"
)

// BenchmarkGenerate writes generated calls through the recorder, as the
// SIP edge reports them: the write path's throughput.
func BenchmarkGenerate(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			svc := startService(b, openDB(b, be.url(b)), cdr.Options{})
			n := 0
			for b.Loop() {
				o := cdr.GenerateOptions{Count: 20000, Days: 30, Seed: uint64(n), Now: time.Now()}
				if _, err := cdr.Generate(context.Background(), svc, o); err != nil {
					b.Fatal(err)
				}
				n += o.Count
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}
