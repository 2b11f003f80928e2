package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convene/convene/internal/store"
)

// Several schedulers may run for one platform: the one holding the
// platform's lease in the store is active, the others stand by and take
// over when it dies (HA). The election keeps this instance's part in it.

// leaseStore is what the election needs of the platform store: the lease
// script, which answers store.ErrLeaseHeld when another holds the lease.
type leaseStore interface {
	AcquireLease(ctx context.Context, platform, holder string, ttl time.Duration) error
	ReleaseLease(ctx context.Context, platform, holder string) error
}

// candidate is what the election makes active and stands down.
type candidate interface {
	// activate makes the instance the active one; on error the election
	// frees the lease.
	activate(ctx context.Context) error
	// deactivate stands it down.
	deactivate()
}

// election takes the platform's lease when it is free, renews it every
// renew while it holds it, activates its candidate when it takes the lease
// and stands it down when it loses it (to another instance, or for a whole
// term without an answer from the store). It keeps the lease clock: the
// lease is held, by this instance's own clock, until ttl after the request
// that last renewed it was sent.
//
// Its lock is a leaf: nothing else is taken while it is held, and the
// candidate is called without it.
type election struct {
	store    leaseStore
	cand     candidate
	platform string
	id       string
	ttl      time.Duration
	renew    time.Duration
	log      *slog.Logger
	// now is the clock (time.Now); epoch is when the election was made,
	// and until when the lease runs out, in nanoseconds since epoch.
	now   func() time.Time
	epoch time.Time
	until atomic.Int64

	mu sync.Mutex
	// active is true while the candidate is active by this election's
	// doing; lastHeld is when the lease was last renewed.
	active   bool
	lastHeld time.Time
	cancel   context.CancelFunc
	done     chan struct{}
}

func newElection(st leaseStore, c candidate, o Options, log *slog.Logger) *election {
	e := &election{
		store: st, cand: c, platform: o.Platform, id: o.ID, ttl: o.LeaseTTL, renew: o.LeaseRenew, log: log,
		now: time.Now,
	}
	e.epoch = e.now()
	return e
}

// join takes the lease if it is free and activates the candidate, then
// keeps renewing it (or waiting for it) until stop. An error from the store
// other than "held by another", or from the activation, is returned and
// nothing keeps running.
func (e *election) join(ctx context.Context) error {
	if err := e.enter(ctx); err != nil {
		return err
	}
	ectx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	e.mu.Lock()
	e.cancel, e.done = cancel, done
	e.mu.Unlock()
	go e.run(ectx, done)
	return nil
}

// enter is join's first try for the lease.
func (e *election) enter(ctx context.Context) error {
	sent := e.now()
	err := e.store.AcquireLease(ctx, e.platform, e.id, e.ttl)
	active := false
	switch {
	case err == nil:
		e.renewed(sent)
		if err := e.cand.activate(ctx); err != nil {
			e.letGo()
			return err
		}
		active = true
	case !errors.Is(err, store.ErrLeaseHeld):
		return fmt.Errorf("scheduler: %w", err)
	default:
		e.log.Info("standing by: another scheduler holds the lease", "err", err)
	}
	e.mu.Lock()
	e.active, e.lastHeld = active, e.now()
	e.mu.Unlock()
	return nil
}

// run renews every renew until ctx ends.
func (e *election) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(e.renew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.round(ctx)
	}
}

// round renews the lease, or takes it when it is free. An active instance
// that cannot renew for a whole lease term stops acting: another may hold
// the lease by then.
func (e *election) round(ctx context.Context) {
	sent := e.now()
	rctx, cancel := context.WithTimeout(ctx, e.renew)
	err := e.store.AcquireLease(rctx, e.platform, e.id, e.ttl)
	cancel()
	e.mu.Lock()
	active, lastHeld := e.active, e.lastHeld
	if err == nil {
		e.lastHeld = e.now()
	}
	e.mu.Unlock()
	switch {
	case err == nil:
		e.renewed(sent)
		if active {
			return
		}
		e.log.Info("lease taken: becoming the active scheduler")
		if err := e.cand.activate(ctx); err != nil {
			e.log.Error("could not become active", "err", err)
			e.letGo()
			return
		}
		e.setActive(true)
	case errors.Is(err, store.ErrLeaseHeld):
		if active {
			e.log.Warn("lease lost to another scheduler: standing down", "err", err)
			e.standDown()
		}
	default:
		if active && e.now().Sub(lastHeld) > e.ttl {
			e.log.Warn("lease not renewed for a whole term: standing down", "err", err)
			e.standDown()
		}
	}
}

func (e *election) standDown() {
	e.cand.deactivate()
	e.setActive(false)
}

func (e *election) setActive(on bool) {
	e.mu.Lock()
	e.active = on
	e.mu.Unlock()
}

// renewed records a lease taken or renewed by a request sent at sent.
func (e *election) renewed(sent time.Time) {
	e.until.Store(int64(sent.Add(e.ttl).Sub(e.epoch)))
}

// held reports whether the lease is still this instance's by its own
// clock: renewed by a request sent less than ttl ago. The store counts the
// term from when it ran that request, later, so the store never gives the
// lease to another while this says it is held. An instance that was paused
// past its lease (a stopped process, a long pause, a cut network) finds it
// run out when it resumes and starts nothing (no create, restore,
// reconciliation or timer work) until it has renewed it; by then a standby
// may hold it, and this one stands down.
func (e *election) held() bool {
	return e.now().Sub(e.epoch) < time.Duration(e.until.Load())
}

// stop ends the renewals and waits for the one under way. The lease is
// left to run out (release frees it).
func (e *election) stop() {
	e.mu.Lock()
	cancel, done := e.cancel, e.done
	e.cancel, e.done = nil, nil
	e.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// release frees the lease, so a standby takes over at once.
func (e *election) release(ctx context.Context) error {
	e.until.Store(0)
	return e.store.ReleaseLease(ctx, e.platform, e.id)
}

// letGo frees a lease taken by an instance that could not become active.
func (e *election) letGo() {
	_ = e.release(context.Background())
}
