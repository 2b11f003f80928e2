package store

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// Embedded is a Redis-protocol server inside this process. Its data lives in
// memory only: it is gone when the process ends. Keys never expire by TTL
// on it: Convene's keys use none (the scheduler lease keeps its expiry
// against the server's TIME), and moving the server's clock walks and sorts
// every key under its lock, a pause that grows with the store. Scripts run
// on a runner of Convene's (scripting.go), not on the server's own.
type Embedded struct {
	m *miniredis.Miniredis
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
	installScripts(m.Server())
	return &Embedded{m: m}, nil
}

// Addr is host:port of the server.
func (e *Embedded) Addr() string { return e.m.Addr() }

// URL is redis://host:port of the server.
func (e *Embedded) URL() string { return "redis://" + e.m.Addr() }

// Close stops the server.
func (e *Embedded) Close() { e.m.Close() }
