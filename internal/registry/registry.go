package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// Options configure a registry.
type Options struct {
	// Platform whose registry this is.
	Platform string
}

// Service is the registry of one platform.
type Service struct {
	opts Options
	bus  *bus.Bus
	log  *slog.Logger

	mu      sync.RWMutex
	entries map[string]entry // e164 -> entry
	sub     *bus.Subscription
}

type entry struct {
	protocol.RegistryEntry
	reporter string
}

// New builds a registry; Start runs it.
func New(opts Options, b *bus.Bus, log *slog.Logger) (*Service, error) {
	if b == nil || opts.Platform == "" {
		return nil, errors.New("registry: a bus and a platform are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{opts: opts, bus: b, log: log.With("service", "registry", "platform", opts.Platform), entries: make(map[string]entry)}, nil
}

// Start subscribes and asks the schedulers to report everything.
func (s *Service) Start(ctx context.Context) error {
	x := bus.NewMux(func(msg string, args ...any) { s.log.Warn(msg, args...) })
	x.HandleFunc(protocol.UPUConfAddNtf, s.handleAdd)
	x.HandleFunc(protocol.UPUConfDelNtf, s.handleDel)
	x.HandleFunc(protocol.UPUClearNtf, s.handleClear)
	x.HandleFunc(protocol.UPUQueryReq, s.handleQuery)
	x.HandleFunc(protocol.UPUListReq, s.handleList)
	sub, err := s.bus.Subscribe(protocol.SubjectRegistry(s.opts.Platform), x)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	s.sub = sub
	if err := s.bus.Flush(ctx); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return s.bus.Publish(protocol.SubjectRegistryResync(s.opts.Platform), protocol.Header{Type: protocol.UPUResyncReq})
}

// Shutdown unsubscribes.
func (s *Service) Shutdown(context.Context) error {
	if s.sub != nil {
		return s.sub.Unsubscribe()
	}
	return nil
}

// Lookup says where a number lives.
func (s *Service) Lookup(e164 string) (protocol.RegistryEntry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.entries[e164]
	return e.RegistryEntry, ok
}

// List returns the entries of a kind (0: every kind), by number.
func (s *Service) List(kind int) []protocol.RegistryEntry {
	s.mu.RLock()
	out := make([]protocol.RegistryEntry, 0, len(s.entries))
	for _, e := range s.entries {
		if kind == 0 || e.Kind == kind {
			out = append(out, e.RegistryEntry)
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].E164 < out[j].E164 })
	return out
}

func (s *Service) handleAdd(_ context.Context, m *bus.Msg) {
	var ntf protocol.RegistryNtf
	if err := m.Decode(&ntf); err != nil || ntf.Entry.E164 == "" {
		s.log.Warn("bad registry report", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.entries[ntf.Entry.E164]; ok && old.UpdatedMs > ntf.Entry.UpdatedMs {
		return // an older report arriving late
	}
	s.entries[ntf.Entry.E164] = entry{RegistryEntry: ntf.Entry, reporter: ntf.Reporter}
}

func (s *Service) handleDel(_ context.Context, m *bus.Msg) {
	var ntf protocol.RegistryNtf
	if err := m.Decode(&ntf); err != nil {
		s.log.Warn("bad registry report", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.entries[ntf.Entry.E164]; ok && (ntf.Entry.Kind == 0 || old.Kind == ntf.Entry.Kind) {
		delete(s.entries, ntf.Entry.E164)
	}
}

// handleClear forgets what a reporter said, or only its entries of one
// source platform (000 §7.2: a failed platform's entries are cleared).
func (s *Service) handleClear(_ context.Context, m *bus.Msg) {
	var ntf protocol.RegistryClearNtf
	if err := m.Decode(&ntf); err != nil {
		s.log.Warn("bad registry clear", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.entries {
		if e.reporter == ntf.Reporter && (ntf.Platform == "" || e.Platform == ntf.Platform) {
			delete(s.entries, k)
		}
	}
}

func (s *Service) handleQuery(_ context.Context, m *bus.Msg) {
	var q protocol.RegistryQuery
	if err := m.Decode(&q); err != nil {
		_ = m.Nack(protocol.UPUQueryNack, protocol.ErrBadRequest, err.Error())
		return
	}
	e, ok := s.Lookup(q.E164)
	if !ok {
		_ = m.Nack(protocol.UPUQueryNack, protocol.ErrNotFound, fmt.Sprintf("number %s is not registered on platform %s", q.E164, s.opts.Platform))
		return
	}
	_ = m.Respond(protocol.RegistryQueryAck{Type: protocol.UPUQueryAck, Entry: e})
}

func (s *Service) handleList(_ context.Context, m *bus.Msg) {
	var q protocol.RegistryQuery
	if err := m.Decode(&q); err != nil {
		_ = m.Nack(protocol.UPUQueryNack, protocol.ErrBadRequest, err.Error())
		return
	}
	_ = m.Respond(protocol.RegistryListAck{Type: protocol.UPUListAck, Entries: s.List(q.Kind)})
}
