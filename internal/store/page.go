package store

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/convene/convene/internal/protocol"
)

// PageQuery asks for one page of conferences ordered by number.
type PageQuery struct {
	// After is the last number of the previous page ("" from the first).
	After string
	// Size is the most conferences a page holds (at least 1).
	Size int
	// State, when set, keeps the conferences in that state.
	State string
	// Keep, when set, keeps the conferences it reports true for.
	Keep func(*protocol.Conference) bool
}

// ConferencePage is one page of conferences ordered by number; Next is
// the After of the page that follows, "" on the last page.
type ConferencePage struct {
	Conferences []protocol.Conference
	Next        string
	// Counts are how many conferences of the whole list (not only this
	// page, and before any Keep) are in each state.
	Counts map[string]int
}

// pageChunk is the most conferences one round trip of a page reads.
const pageChunk = 1000

// ConferencePage reads one page of the conferences of the store, ordered
// by number. It reads the store's index of conferences (their numbers)
// and then only the conferences the page needs, not every conference.
// Its counts come from the store's indexes of conferences being created
// and waiting for a restore, in the same round trip.
func (s *Store) ConferencePage(ctx context.Context, q PageQuery) (ConferencePage, error) {
	cctx, cancel := s.ctx(ctx)
	pipe := s.rdb.Pipeline()
	all := pipe.ZRange(cctx, endTimesKey, 0, -1)
	creating := pipe.ZCard(cctx, creatingKey)
	pending := pipe.SCard(cctx, pendingKey)
	_, err := pipe.Exec(cctx)
	cancel()
	if err != nil {
		return ConferencePage{}, fmt.Errorf("store: %w", err)
	}
	ids := all.Val()
	p, err := s.page(ctx, ids, nil, q)
	if err != nil {
		return ConferencePage{}, err
	}
	c, w := int(creating.Val()), int(pending.Val())
	p.Counts = map[string]int{
		protocol.StateRunning:        max(len(ids)-c-w, 0),
		protocol.StateCreating:       c,
		protocol.StatePendingRestore: w,
	}
	return p, nil
}

// DomainConferencePage reads one page of a user domain's conferences,
// ordered by number; the domain's list gives their states, so a state
// filter reads only the conferences in that state.
func (s *Store) DomainConferencePage(ctx context.Context, moid string, q PageQuery) (ConferencePage, error) {
	states, err := s.DomainStates(ctx, moid)
	if err != nil {
		return ConferencePage{}, err
	}
	ids := make([]string, 0, len(states))
	for e := range states {
		ids = append(ids, e)
	}
	p, err := s.page(ctx, ids, states, q)
	if err != nil {
		return ConferencePage{}, err
	}
	p.Counts = map[string]int{protocol.StateRunning: 0, protocol.StateCreating: 0, protocol.StatePendingRestore: 0}
	for _, st := range states {
		p.Counts[st]++
	}
	return p, nil
}

// page walks ids in order from q.After and reads conferences a chunk at a
// time until the page and one more conference (which says a next page
// exists) are found. states, when not nil, are the conferences' states as
// an index holds them; without it a state filter reads each candidate's
// state before its whole record.
func (s *Store) page(ctx context.Context, ids []string, states map[string]string, q PageQuery) (ConferencePage, error) {
	size := max(q.Size, 1)
	sort.Strings(ids)
	i := 0
	if q.After != "" {
		i = sort.SearchStrings(ids, q.After)
		if i < len(ids) && ids[i] == q.After {
			i++
		}
	}
	filtered := q.State != "" || q.Keep != nil
	want := size + 1
	out := make([]protocol.Conference, 0, min(want, len(ids)-i))
	for i < len(ids) && len(out) < want {
		n := want - len(out)
		if filtered {
			n = max(n, 64)
		}
		n = min(n, pageChunk)
		chunk := ids[i:min(i+n, len(ids))]
		i += len(chunk)
		if q.State != "" {
			var err error
			if chunk, err = s.inState(ctx, chunk, states, q.State); err != nil {
				return ConferencePage{}, err
			}
		}
		confs, err := s.Conferences(ctx, chunk)
		if err != nil {
			return ConferencePage{}, err
		}
		for k := range confs {
			c := &confs[k]
			// A conference may change state between the two reads: its
			// record decides.
			if q.State != "" && c.State != q.State || q.Keep != nil && !q.Keep(c) {
				continue
			}
			out = append(out, *c)
			if len(out) == want {
				break
			}
		}
	}
	var p ConferencePage
	if len(out) > size {
		out = out[:size]
		p.Next = out[size-1].E164
	}
	p.Conferences = out
	return p, nil
}

// inState keeps the numbers whose state is state, read from states or,
// when nil, from the conferences' records in one round trip.
func (s *Store) inState(ctx context.Context, ids []string, states map[string]string, state string) ([]string, error) {
	keep := make([]string, 0, len(ids))
	if states != nil {
		for _, e := range ids {
			if states[e] == state {
				keep = append(keep, e)
			}
		}
		return keep, nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	pipe := s.rdb.Pipeline()
	cmds := make([]interface{ Result() (string, error) }, len(ids))
	for k, e := range ids {
		cmds[k] = pipe.HGet(ctx, confKey(e), "state")
	}
	// A number whose record is gone answers redis.Nil: it is left out.
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: %w", err)
	}
	for k, c := range cmds {
		v, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, fmt.Errorf("store: %w", err)
		case v == state:
			keep = append(keep, ids[k])
		}
	}
	return keep, nil
}
