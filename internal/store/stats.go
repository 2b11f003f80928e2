package store

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Stats count the store's work since Open.
type Stats struct {
	// RoundTrips to the server: one per command sent alone, one per
	// pipeline, one per script run.
	RoundTrips int64
	// Batches is how many group-commit script runs the reserve and commit
	// steps made, and BatchedItems how many items they carried.
	Batches      int64
	BatchedItems int64
}

// Stats reports the counts so far.
func (s *Store) Stats() Stats {
	return Stats{
		RoundTrips:   s.hook.trips.Load(),
		Batches:      s.creates.batches.Load(),
		BatchedItems: s.creates.items.Load(),
	}
}

// countHook counts round trips.
type countHook struct{ trips atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.trips.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.trips.Add(1)
		return next(ctx, cmds)
	}
}
