// Package service is the life every bus service of Convene shares (RMS,
// PMS, the registry, breakout; the scheduler gives each of its terms as
// the active instance a Life of its own): one Start that subscribes and confirms the subscriptions before the
// service is ready, goroutines that run until Shutdown, and one Shutdown
// that drops the subscriptions, stops the goroutines and waits for them, and
// tells the bus server nobody answers here any more. A service keeps a Life
// in a field and gives its users the shape New(opts, deps), a non-blocking
// Start(ctx), Ready and Shutdown(ctx) error.
//
// The package imports no service of Convene's: tier 2.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/convene/convene/internal/bus"
)

// Life is the running state of one service. Init it in the service's New;
// the zero Life is not usable.
type Life struct {
	name     string // "rms plat-a": what errors name
	bus      *bus.Bus
	log      *slog.Logger
	started  atomic.Bool // Start was called
	ready    atomic.Bool // serving
	stop     chan struct{}
	stopOnce sync.Once      // closes stop
	wg       sync.WaitGroup // the goroutines of Go

	mu   sync.Mutex // held through Start and Shutdown's dropping; guards subs
	subs []*bus.Subscription
}

// Init prepares l for a service called name (its errors begin with it)
// whose main bus connection is b; log may be nil.
func (l *Life) Init(name string, b *bus.Bus, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l.name, l.bus, l.log = name, b, log
	l.stop = make(chan struct{})
}

// Start runs start once, holding the subscription lock. start subscribes
// (Subscribe) and confirms what it subscribed (Confirm) and starts the
// service's goroutines (Go); when it fails, every subscription it made is
// dropped. The service is ready once start returned nil. A second Start
// returns again, and runs nothing.
func (l *Life) Start(again error, start func() error) error {
	if !l.started.CompareAndSwap(false, true) {
		return again
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := start(); err != nil {
		l.drop()
		return err
	}
	l.ready.Store(true)
	return nil
}

// Subscribe subscribes h to subject on the connection on (the service's own
// or another, such as a system connection); only from Start's start.
func (l *Life) Subscribe(on *bus.Bus, subject string, h bus.Handler, opts ...bus.SubOption) (*bus.Subscription, error) {
	sub, err := on.Subscribe(subject, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.name, err)
	}
	l.subs = append(l.subs, sub)
	return sub, nil
}

// Confirm waits until the bus server confirmed the subscriptions made so
// far on each connection given (nil ones are passed over); ctx bounds the
// wait. Only from Start's start.
func (l *Life) Confirm(ctx context.Context, conns ...*bus.Bus) error {
	for _, b := range conns {
		if b == nil {
			continue
		}
		if err := b.Flush(ctx); err != nil {
			return fmt.Errorf("%s: confirm subscriptions: %w", l.name, err)
		}
	}
	return nil
}

// Go runs f in a goroutine that Shutdown waits for; f returns once Done is
// closed.
func (l *Life) Go(f func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
}

// Done is closed when Shutdown begins.
func (l *Life) Done() <-chan struct{} { return l.stop }

// Ready reports whether the service is serving.
func (l *Life) Ready() bool { return l.ready.Load() }

// Shutdown stops serving: it drops the subscriptions, closes Done and
// waits for the goroutines of Go until ctx ends. Then, when the service had
// subscribed and its connection is up, it waits until the bus server has
// the last messages the service sent and knows that nobody answers here. A
// connection that is down has nothing to tell. It is safe to repeat.
func (l *Life) Shutdown(ctx context.Context) error {
	l.ready.Store(false)
	l.mu.Lock()
	had := len(l.subs) > 0
	l.drop()
	l.mu.Unlock()
	l.stopOnce.Do(func() { close(l.stop) })
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("%s: shutdown: %w", l.name, ctx.Err())
	}
	if had && l.bus.Connected() {
		if err := l.bus.Flush(ctx); err != nil {
			return fmt.Errorf("%s: shutdown: %w", l.name, err)
		}
	}
	return nil
}

// drop unsubscribes everything; the caller holds mu.
func (l *Life) drop() {
	for _, sub := range l.subs {
		if err := sub.Unsubscribe(); err != nil {
			l.log.Warn(l.name+" unsubscribe failed", "err", err)
		}
	}
	l.subs = nil
}
