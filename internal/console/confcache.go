package console

import (
	"context"
	"sync"
	"time"

	"github.com/convene/convene/internal/apiclient"
)

// confCache keeps the latest conference list of each platform, as the
// API answered an operator's or readonly token (both may read every
// conference of a platform; a tenant's lists never come from here). With
// ten thousand conferences the API takes more than a second to list them,
// so a page drawn from scratch may use a list a few seconds old and have
// it refreshed behind it; the page's live part, reloaded on each change,
// always waits for a list read after the change.
//
// Generations order lists and changes: a change the stream reports makes
// every list read before it stale (soft), one made from the console
// (end, fail a room) makes them unusable (hard), so the page an action
// redirects to shows its outcome.
type confCache struct {
	timeout time.Duration

	mu      sync.Mutex // guards the fields below
	soft    uint64     // lists read before this generation are stale
	hard    uint64     // lists read before this generation are not shown
	entries map[string]*confEntry
}

// The ages of a list: fresh, then stale (shown on a page drawn from
// scratch while a new one is read), then not shown.
const (
	confFreshFor = 2 * time.Second
	confStaleFor = time.Minute
)

type confEntry struct {
	gen    uint64
	at     time.Time
	confs  []apiclient.Conference
	flight *confFlight
}

// confFlight is a read of a list in progress, shared by every page that
// waits for it.
type confFlight struct {
	gen   uint64
	done  chan struct{}
	confs []apiclient.Conference
	err   error
}

func newConfCache(timeout time.Duration) *confCache {
	return &confCache{timeout: timeout, entries: map[string]*confEntry{}}
}

// changed marks the lists read so far stale; hard: not to be shown.
func (c *confCache) changed(hard bool) {
	c.mu.Lock()
	c.soft++
	if hard {
		c.hard = c.soft
	}
	c.mu.Unlock()
}

// get is the conference list under key. A page drawn from scratch
// (stale true) takes a list of the last minute and has it refreshed; the
// others wait for a list read since the last change.
func (c *confCache) get(ctx context.Context, key string, stale bool, fetch func(context.Context) ([]apiclient.Conference, error)) ([]apiclient.Conference, error) {
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		e = &confEntry{}
		c.entries[key] = e
	}
	now := time.Now()
	have := e.confs != nil && e.gen >= c.hard && now.Sub(e.at) < confStaleFor
	if have && e.gen >= c.soft && now.Sub(e.at) < confFreshFor {
		confs := e.confs
		c.mu.Unlock()
		return confs, nil
	}
	f := e.flight
	if f == nil || f.gen < c.soft {
		f = &confFlight{gen: c.soft, done: make(chan struct{})}
		e.flight = f
		go c.read(key, e, f, context.WithoutCancel(ctx), fetch)
	}
	if stale && have {
		confs := e.confs
		c.mu.Unlock()
		return confs, nil
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.confs, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// read reads a list for the flight f and keeps it when it is newer than
// what e holds.
func (c *confCache) read(key string, e *confEntry, f *confFlight, ctx context.Context, fetch func(context.Context) ([]apiclient.Conference, error)) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	at := time.Now()
	f.confs, f.err = fetch(ctx)
	if f.confs == nil && f.err == nil {
		f.confs = []apiclient.Conference{}
	}
	c.mu.Lock()
	if f.err == nil && f.gen >= e.gen {
		e.gen, e.at, e.confs = f.gen, at, f.confs
	}
	if e.flight == f {
		e.flight = nil
	}
	c.mu.Unlock()
	close(f.done)
}

// warm starts reading the list under key when no list of the last minute
// is kept nor being read, and returns at once: a page that needs the
// list later (the platforms page, a confirmation) finds it. A page that
// calls it often reads the list at most once a minute.
func (c *confCache) warm(ctx context.Context, key string, fetch func(context.Context) ([]apiclient.Conference, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil {
		e = &confEntry{}
		c.entries[key] = e
	}
	if e.confs != nil && e.gen >= c.hard && time.Since(e.at) < confStaleFor || e.flight != nil {
		return
	}
	f := &confFlight{gen: c.soft, done: make(chan struct{})}
	e.flight = f
	go c.read(key, e, f, context.WithoutCancel(ctx), fetch)
}
