package store

import (
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Embedded is a Redis-protocol server inside this process. Its data lives in
// memory only: it is gone when the process ends. Keys with a TTL expire
// with real time, to within a second (Convene's own keys use none).
type Embedded struct {
	m    *miniredis.Miniredis
	stop chan struct{}
	done chan struct{}
}

// StartEmbedded starts an in-process Redis-protocol server on addr
// ("127.0.0.1:0" picks a free port).
func StartEmbedded(addr string) (*Embedded, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("store: embedded server on %s: %w", addr, err)
	}
	e := &Embedded{m: m, stop: make(chan struct{}), done: make(chan struct{})}
	go e.clock()
	return e, nil
}

// clock moves the server's TTLs with the wall clock: on its own the server
// only expires keys when told to. Telling it walks every key under the
// server's lock, so it is done once a second, not more.
func (e *Embedded) clock() {
	defer close(e.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			e.m.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Addr is host:port of the server.
func (e *Embedded) Addr() string { return e.m.Addr() }

// URL is redis://host:port of the server.
func (e *Embedded) URL() string { return "redis://" + e.m.Addr() }

// Close stops the server.
func (e *Embedded) Close() {
	select {
	case <-e.stop:
	default:
		close(e.stop)
		<-e.done
	}
	e.m.Close()
}
