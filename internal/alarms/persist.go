package alarms

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/records"
)

// load takes the alarms the records database holds active: one raised
// before a restart stays the one alarm of its cause (the checks clear it
// if the cause went meanwhile). An alarm this service raised for the same
// cause while the database could not be read becomes that one.
func (s *Service) load(ctx context.Context) error {
	list, err := s.deps.Records.Alarms(ctx, true, 0)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range list {
		k := keyOf(a)
		if e, ok := s.active[k]; ok {
			if e.a.ID != a.ID {
				s.adopt(e, a)
			}
			continue
		}
		if _, ok := s.byID[a.ID]; ok {
			continue // cleared here, not yet written
		}
		e := &entry{a: a, version: 1, written: 1}
		s.active[k], s.byID[a.ID] = e, e
		if a.Kind == apiclient.AlarmHostDown {
			s.hosts[a.Subject] = true
		}
		s.gauge.WithLabelValues(a.Kind, a.Subject, a.Severity).Set(1)
	}
	s.loaded = true
	return nil
}

// adopt makes e the alarm stored for its cause: its id and the time it
// was raised; an acknowledgement of either stands. Called with mu held.
func (s *Service) adopt(e *entry, stored records.Alarm) {
	delete(s.byID, e.a.ID)
	e.a.ID, e.a.RaisedAt = stored.ID, stored.RaisedAt
	if stored.Acked && !e.a.Acked {
		e.a.Acked, e.a.AckedAt = true, stored.AckedAt
	}
	e.version++
	s.byID[e.a.ID] = e
}

// flush writes every alarm changed since the records database last took
// it, oldest first, each write safe to repeat; it stops at the first
// failure and is called again.
func (s *Service) flush(ctx context.Context) error {
	if !s.isLoaded() {
		lctx, cancel := context.WithTimeout(ctx, s.opts.CheckTimeout)
		err := s.load(lctx)
		cancel()
		if err != nil {
			s.recordsFailed(err)
			return err
		}
	}
	type pending struct {
		e       *entry
		a       records.Alarm
		version uint64
	}
	var todo []pending
	s.mu.Lock()
	for _, e := range s.byID {
		if e.written != e.version {
			todo = append(todo, pending{e, e.a, e.version})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(todo, func(x, y pending) int {
		return cmp.Or(x.a.RaisedAt.Compare(y.a.RaisedAt), cmp.Compare(x.a.ID, y.a.ID))
	})
	for _, p := range todo {
		wctx, cancel := context.WithTimeout(ctx, s.opts.CheckTimeout)
		stored, err := s.store(wctx, p.a)
		cancel()
		if err != nil {
			s.recordsFailed(err)
			return err
		}
		s.mu.Lock()
		if stored.ID != p.a.ID {
			s.adopt(p.e, stored)
		}
		if p.e.version == p.version {
			p.e.written = p.version
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	wasDown := s.down
	s.down = false
	s.trimRecent()
	s.mu.Unlock()
	if wasDown {
		s.log.Info("alarms: the records database answers again; every alarm is written")
	}
	return nil
}

// store writes one alarm as it is now: raised (or the alarm already
// active for its cause), then cleared and acknowledged as it is. It
// answers the alarm stored for the cause.
func (s *Service) store(ctx context.Context, a records.Alarm) (records.Alarm, error) {
	r := s.deps.Records
	stored, err := r.RaiseAlarm(ctx, a)
	if err != nil {
		return records.Alarm{}, fmt.Errorf("alarms: write alarm %s: %w", a.ID, err)
	}
	if !a.ClearedAt.IsZero() && stored.Active() {
		if stored, err = r.ClearAlarm(ctx, stored.ID, a.ClearedAt); err != nil {
			return records.Alarm{}, fmt.Errorf("alarms: write alarm %s: %w", a.ID, err)
		}
	}
	if a.Acked && !stored.Acked {
		if stored, err = r.AckAlarm(ctx, stored.ID, a.AckedAt); err != nil {
			return records.Alarm{}, fmt.Errorf("alarms: write alarm %s: %w", a.ID, err)
		}
	}
	return stored, nil
}

func (s *Service) isLoaded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loaded
}

// recordsFailed logs the first failure of an outage; alarms stay in
// memory until written.
func (s *Service) recordsFailed(err error) {
	s.mu.Lock()
	first := !s.down
	s.down = true
	s.mu.Unlock()
	if first {
		s.log.Warn("alarms: the records database does not answer; alarms are kept in memory and written when it does", "err", err)
	}
}
