package store

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher is a group commit: items queued by concurrent callers are handed
// to one run of a script that takes "now, n, item args..." and answers one
// result per item. With two workers one batch is in flight while the next
// gathers; at low load an item waits for nobody.
type batcher struct {
	rdb     *redis.Client
	script  *redis.Script
	max     int
	timeout time.Duration
	in      chan *batchItem
	mu      sync.RWMutex // submit: shared; close: exclusive
	closed  bool
	wg      sync.WaitGroup
	once    sync.Once
	batches atomic.Int64
	items   atomic.Int64
}

type batchItem struct {
	args     []any
	deadline time.Time // the caller's, if it has one
	res      chan batchResult
}

type batchResult struct {
	r   result
	err error
}

func newBatcher(rdb *redis.Client, sc *redis.Script, max, workers int, timeout time.Duration) *batcher {
	b := &batcher{rdb: rdb, script: sc, max: max, timeout: timeout, in: make(chan *batchItem, 4*max)}
	for range workers {
		b.wg.Add(1)
		go b.loop()
	}
	return b
}

// do queues one item and waits for its result. Once queued, the item will
// run even if ctx ends, so the caller always learns what happened to it.
func (b *batcher) do(ctx context.Context, args []any) (result, error) {
	it, err := b.submit(ctx, args)
	if err != nil {
		return nil, err
	}
	return it.wait()
}

// submit queues one item; its result is had with wait. After close it
// queues nothing and answers the client's closed error.
func (b *batcher) submit(ctx context.Context, args []any) (*batchItem, error) {
	it := &batchItem{args: args, res: make(chan batchResult, 1)}
	it.deadline, _ = ctx.Deadline()
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, fmt.Errorf("store: %w", redis.ErrClosed)
	}
	select {
	case b.in <- it:
		return it, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("store: %w", ctx.Err())
	}
}

// wait blocks until the item has run.
func (it *batchItem) wait() (result, error) {
	r := <-it.res
	return r.r, r.err
}

// close stops taking items, runs those already queued, and returns when
// they have their results.
func (b *batcher) close() {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.in)
	})
	b.wg.Wait()
}

func (b *batcher) loop() {
	defer b.wg.Done()
	items := make([]*batchItem, 0, b.max)
	for first := range b.in {
		items = append(items[:0], first)
		// Yield once so that creates about to arrive join this run: twice
		// the creates per script run under load, nothing at low load.
		runtime.Gosched()
	gather:
		for len(items) < b.max {
			select {
			case it, ok := <-b.in:
				if !ok {
					break gather
				}
				items = append(items, it)
			default:
				break gather
			}
		}
		b.run(items)
	}
}

// run sends one batch as one operation (ops.go): a repeat after a lost
// reply carries the same arguments, time included, and gets the first
// run's answers. It is sent again while the connection fails, until the
// latest of its callers' deadlines, and for at least two store timeouts.
func (b *batcher) run(items []*batchItem) {
	b.batches.Add(1)
	b.items.Add(int64(len(items)))
	n := 2
	deadline := time.Now().Add(2 * b.timeout)
	for _, it := range items {
		n += len(it.args)
		if it.deadline.After(deadline) {
			deadline = it.deadline
		}
	}
	cmd := opCall(b.script, newOpID(), n)
	cmd = append(cmd, strconv.FormatInt(time.Now().UnixMilli(), 10), strconv.Itoa(len(items)))
	for _, it := range items {
		cmd = append(cmd, it.args...)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	v, err := runOp(ctx, b.rdb, b.script, cmd)
	cancel()
	if err != nil {
		err = fmt.Errorf("store: %w", err)
		for _, it := range items {
			it.res <- batchResult{err: err}
		}
		return
	}
	all, ok := v.([]any)
	if !ok || len(all) != len(items) {
		err := fmt.Errorf("store: batch reply has %d results for %d items", len(all), len(items))
		for _, it := range items {
			it.res <- batchResult{err: err}
		}
		return
	}
	for i, it := range items {
		r, err := asResult(all[i])
		it.res <- batchResult{r: r, err: err}
	}
}
