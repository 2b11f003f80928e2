package store

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// Embedded is a Redis-protocol server inside this process. Its data lives in
// memory only: it is gone when the process ends.
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
	return &Embedded{m: m}, nil
}

// Addr is host:port of the server.
func (e *Embedded) Addr() string { return e.m.Addr() }

// URL is redis://host:port of the server.
func (e *Embedded) URL() string { return "redis://" + e.m.Addr() }

// Close stops the server.
func (e *Embedded) Close() { e.m.Close() }
