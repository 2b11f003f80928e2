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
	"github.com/convene/convene/internal/service"
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

	mu sync.RWMutex
	// entries holds, for each number, what is reported of it by kind: a
	// booked number (a scheduled conference, a template, a virtual room)
	// keeps its booking while a conference of that number runs.
	entries map[string]kinds

	life service.Life // the subscription, ready
}

// ErrStarted means Start was called twice.
var ErrStarted = errors.New("registry: already started")

// kinds are the entries of one number, by kind.
type kinds map[int]entry

type entry struct {
	protocol.RegistryEntry
	reporter string
}

// first is the entry a call to the number goes to: the running
// conference, else the booking of lowest kind.
func (k kinds) first() (entry, bool) {
	best, bestKind, found := entry{}, 0, false
	for kind, e := range k {
		if !found || kind < bestKind {
			best, bestKind, found = e, kind, true
		}
	}
	return best, found
}

// isBooking reports whether an entry's kind is one booked ahead of any
// conference (000 §7.3), as opposed to a running conference.
func isBooking(kind int) bool {
	return kind == protocol.EntryReserved || kind == protocol.EntryTemplate || kind == protocol.EntryVirtual
}

// New builds a registry; Start runs it.
func New(opts Options, b *bus.Bus, log *slog.Logger) (*Service, error) {
	if b == nil || opts.Platform == "" {
		return nil, errors.New("registry: a bus and a platform are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{opts: opts, bus: b, log: log.With("service", "registry", "platform", opts.Platform), entries: make(map[string]kinds)}
	s.life.Init("registry "+opts.Platform, b, s.log)
	return s, nil
}

// Start subscribes, confirms the subscription and asks the schedulers to
// report everything. It does not block; a second Start returns
// ErrStarted.
func (s *Service) Start(ctx context.Context) error {
	return s.life.Start(ErrStarted, func() error {
		x := bus.NewMux(func(msg string, args ...any) { s.log.Warn(msg, args...) })
		x.HandleFunc(protocol.UPUConfAddNtf, s.handleAdd)
		x.HandleFunc(protocol.UPUConfDelNtf, s.handleDel)
		x.HandleFunc(protocol.UPUClearNtf, s.handleClear)
		x.HandleFunc(protocol.UPUClearBookingsNtf, s.handleClearBookings)
		x.HandleFunc(protocol.UPUQueryReq, s.handleQuery)
		x.HandleFunc(protocol.UPUListReq, s.handleList)
		if _, err := s.life.Subscribe(s.bus, protocol.SubjectRegistry(s.opts.Platform), x); err != nil {
			return err
		}
		if err := s.life.Confirm(ctx, s.bus); err != nil {
			return err
		}
		if err := s.bus.Publish(protocol.SubjectRegistryResync(s.opts.Platform), protocol.Header{Type: protocol.UPUResyncReq}); err != nil {
			return fmt.Errorf("registry: %w", err)
		}
		return nil
	})
}

// Ready reports whether the registry is serving.
func (s *Service) Ready() bool { return s.life.Ready() }

// Shutdown unsubscribes and waits until the bus server knows nobody
// answers here any more. Safe to repeat.
func (s *Service) Shutdown(ctx context.Context) error { return s.life.Shutdown(ctx) }

// Lookup says where a number lives: the conference running with it, else
// what booked it (a scheduled conference, a template, a virtual room).
func (s *Service) Lookup(e164 string) (protocol.RegistryEntry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.entries[e164].first()
	return e.RegistryEntry, ok
}

// LookupKind is the entry of one kind of a number.
func (s *Service) LookupKind(e164 string, kind int) (protocol.RegistryEntry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.entries[e164][kind]
	return e.RegistryEntry, ok
}

// List returns the entries of a kind (0: every kind), by number and kind.
func (s *Service) List(kind int) []protocol.RegistryEntry {
	s.mu.RLock()
	out := make([]protocol.RegistryEntry, 0, len(s.entries))
	for _, ks := range s.entries {
		for k, e := range ks {
			if kind == 0 || k == kind {
				out = append(out, e.RegistryEntry)
			}
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].E164 != out[j].E164 {
			return out[i].E164 < out[j].E164
		}
		return out[i].Kind < out[j].Kind
	})
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
	ks := s.entries[ntf.Entry.E164]
	if old, ok := ks[ntf.Entry.Kind]; ok && old.UpdatedMs > ntf.Entry.UpdatedMs {
		return // an older report arriving late
	}
	if ks == nil {
		ks = kinds{}
		s.entries[ntf.Entry.E164] = ks
	}
	ks[ntf.Entry.Kind] = entry{RegistryEntry: ntf.Entry, reporter: ntf.Reporter}
}

// handleDel forgets a number's entry of one kind, or all its entries with
// kind 0.
func (s *Service) handleDel(_ context.Context, m *bus.Msg) {
	var ntf protocol.RegistryNtf
	if err := m.Decode(&ntf); err != nil {
		s.log.Warn("bad registry report", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ks, ok := s.entries[ntf.Entry.E164]
	if !ok {
		return
	}
	if ntf.Entry.Kind == 0 {
		delete(s.entries, ntf.Entry.E164)
		return
	}
	delete(ks, ntf.Entry.Kind)
	if len(ks) == 0 {
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
	s.clear(ntf, func(int) bool { return true })
}

// handleClearBookings forgets the bookings and templates a reporter
// reported of one source platform, keeping its running conferences
// (000 §7.2: a recovered master's, on its backup).
func (s *Service) handleClearBookings(_ context.Context, m *bus.Msg) {
	var ntf protocol.RegistryClearNtf
	if err := m.Decode(&ntf); err != nil {
		s.log.Warn("bad registry clear", "err", err)
		return
	}
	n := s.clear(ntf, isBooking)
	s.log.Info("bookings forgotten", "reporter", ntf.Reporter, "source-platform", ntf.Platform, "entries", n)
}

// clear forgets the entries of kinds a reporter reported, of one source
// platform unless ntf.Platform is empty, and says how many.
func (s *Service) clear(ntf protocol.RegistryClearNtf, of func(kind int) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for e164, ks := range s.entries {
		for k, e := range ks {
			if of(k) && e.reporter == ntf.Reporter && (ntf.Platform == "" || e.Platform == ntf.Platform) {
				delete(ks, k)
				n++
			}
		}
		if len(ks) == 0 {
			delete(s.entries, e164)
		}
	}
	return n
}

func (s *Service) handleQuery(_ context.Context, m *bus.Msg) {
	var q protocol.RegistryQuery
	if err := m.Decode(&q); err != nil {
		_ = m.Nack(protocol.UPUQueryNack, protocol.ErrBadRequest, err.Error())
		return
	}
	e, ok := s.Lookup(q.E164)
	if q.Kind != 0 {
		e, ok = s.LookupKind(q.E164, q.Kind)
	}
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
