package store

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/alicebob/miniredis/v2"
)

// Embedded is a Redis-protocol server inside this process. Without a
// directory its data lives in memory only and is gone when the process
// ends; with one (EmbeddedOptions.Dir) it is kept on disk as a snapshot and
// an append-only log, fsynced every second (persist.go says what a crash
// may lose). Keys never expire by TTL on it: Convene's keys use none (the
// scheduler lease keeps its expiry against the server's TIME), and moving
// the server's clock walks and sorts every key under its lock, a pause
// that grows with the store. Scripts run on a runner of Convene's
// (scripting.go), not on the server's own.
type Embedded struct {
	m         *miniredis.Miniredis
	r         *scriptRunner
	p         *persister
	log       *slog.Logger
	closeOnce sync.Once
}

// EmbeddedOptions configure an embedded server.
type EmbeddedOptions struct {
	// Addr is where it listens; default "127.0.0.1:0" (a free port).
	Addr string
	// Dir keeps the data on disk in this directory, created if missing,
	// which no other process may use at the same time. Empty: in memory
	// only.
	Dir string
	// RewriteMin is the size the log grows to before it is compacted
	// into a new snapshot (when it is also larger than the snapshot);
	// default 64 MiB.
	RewriteMin int64
	Log        *slog.Logger
}

// StartEmbedded starts an in-process Redis-protocol server on addr
// ("127.0.0.1:0" picks a free port), its data in memory only.
func StartEmbedded(addr string) (*Embedded, error) {
	return StartEmbeddedWith(EmbeddedOptions{Addr: addr})
}

// StartEmbeddedWith starts an in-process Redis-protocol server. With a
// directory it first loads what the directory holds; it refuses a
// directory another process has (ErrStoreLocked) or whose files are
// damaged (ErrStoreCorrupt).
func StartEmbeddedWith(o EmbeddedOptions) (*Embedded, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	var p *persister
	if o.Dir != "" {
		var err error
		if p, err = openPersister(o.Dir, o.RewriteMin, o.Log); err != nil {
			return nil, err
		}
	}
	m := miniredis.NewMiniRedis()
	if p != nil {
		// Until the runner is in front, with the data loaded, a client
		// that found the address is told to wait.
		m.SetError("LOADING Convene's embedded store is loading its data")
	}
	if err := m.StartAddr(o.Addr); err != nil {
		if p != nil {
			_ = p.close()
		}
		return nil, fmt.Errorf("store: embedded server on %s: %w", o.Addr, err)
	}
	r := newRunner(m.Server(), p)
	e := &Embedded{m: m, r: r, p: p, log: o.Log}
	if p == nil {
		r.install()
		return e, nil
	}
	// Commands wait on mu while the data loads.
	r.mu.Lock()
	r.install()
	a := &applier{dispatch: r.dispatch, setTime: m.SetTime, db: r.peerDB}
	err := p.start(a, func(d *dumper) error { return dumpServer(m, d) })
	r.peerDB = a.db
	r.mu.Unlock()
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Addr is host:port of the server.
func (e *Embedded) Addr() string { return e.m.Addr() }

// URL is redis://host:port of the server.
func (e *Embedded) URL() string { return "redis://" + e.m.Addr() }

// Dir is the directory the data is kept in ("" for memory only).
func (e *Embedded) Dir() string {
	if e.p == nil {
		return ""
	}
	return e.p.dir
}

// Close stops the server; a durable one then fsyncs its log and lets its
// directory go.
func (e *Embedded) Close() {
	e.closeOnce.Do(func() {
		e.m.Close()
		if e.p != nil {
			if err := e.p.close(); err != nil {
				e.log.Error("store: closing the embedded store", "err", err)
			}
		}
	})
}
