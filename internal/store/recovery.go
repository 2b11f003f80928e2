package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convene/convene/internal/protocol"
)

// recoveryScript moves conferences in bulk (lua/recovery.lua).
var recoveryScript = script("recovery")

// recoveryChunk is the most items one recovery script run takes: a run
// holds the store, so a wave of restores leaves room between its runs for
// the creates and reads of everyone else.
const recoveryChunk = 250

// recover runs items of the recovery script in chunks, each chunk one
// operation (a repeat after a lost reply gets the first run's answers),
// and answers one result per item. width is the number of arguments per
// item, its kind letter included. After each chunk but the last, progress
// (when set) hears the results so far. On an error, the results of the
// chunks that ran come back with it.
func (s *Store) recover(ctx context.Context, width int, items []any, progress func(so []result)) ([]result, error) {
	n := len(items) / width
	out := make([]result, 0, n)
	for i := 0; i < n; i += recoveryChunk {
		if i > 0 && progress != nil {
			progress(out)
		}
		end := min(i+recoveryChunk, n)
		args := make([]any, 0, 2+(end-i)*width)
		args = append(args, strconv.FormatInt(time.Now().UnixMilli(), 10), strconv.Itoa(end-i))
		args = append(args, items[i*width:end*width]...)
		wctx, cancel := s.writeCtx(ctx)
		v, err := evalOp(wctx, s.wdb, recoveryScript, newOpID(), args)
		cancel()
		if err != nil {
			return out, fmt.Errorf("store: %w", err)
		}
		all, ok := v.([]any)
		if !ok || len(all) != end-i {
			return out, fmt.Errorf("store: recovery reply has %d results for %d items", len(all), end-i)
		}
		for _, x := range all {
			r, err := asResult(x)
			if err != nil {
				r = result{"ERR", "REPLY", err.Error()}
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// itemErr is a recovery item's error, nil when it applied.
func itemErr(r result, e164 string) error {
	if r.ok() {
		return nil
	}
	return r.err(e164)
}

// Pend marks the given conferences of a node pending-restore, atomically in
// chunks: those running on that node move, the others (another node, not
// running, legacy) are left and reported in skipped. It answers the numbers
// that moved. After each chunk, progress (when set) hears how many moved so
// far, so that restores can start before the last chunk.
func (s *Store) Pend(ctx context.Context, node, reason string, e164s []string, progress func(moved int)) (moved []string, skipped map[string]error, err error) {
	skipped = map[string]error{}
	items := make([]any, 0, 4*len(e164s))
	for _, e := range e164s {
		items = append(items, "P", e, node, reason)
	}
	var tell func([]result)
	if progress != nil {
		counted, ok := 0, 0
		tell = func(so []result) {
			for _, r := range so[counted:] {
				if r.ok() {
					ok++
				}
			}
			counted = len(so)
			progress(ok)
		}
	}
	res, err := s.recover(ctx, 4, items, tell)
	for j, r := range res {
		e := e164s[j]
		if ierr := itemErr(r, e); ierr != nil {
			skipped[e] = ierr
		} else {
			moved = append(moved, e)
		}
	}
	return moved, skipped, err
}

// restoreFields are the fields of a conference a restore sends its new
// node, as the recovery script's begin answers them (RESTORE_FIELDS).
var restoreFields = []string{"confname", "platformmoid", "licclass", "password", "invited", "recording",
	"endtime", "duration"}

// RestoreStart is one conference's outcome in BeginRestores.
type RestoreStart struct {
	// Conf is the conference as its new node is to host it: creating on
	// that node, in that room, with what a node needs to host it.
	Conf protocol.Conference
	// Prev is the node it was on.
	Prev string
	// Monitored is true when it has monitoring sessions, which the move
	// ends.
	Monitored bool
	// Err is nil when the restore began: ErrConfNotFound, or a
	// *StateError (a node report synced it back meanwhile).
	Err error
}

// E164 is the conference's number.
func (r RestoreStart) E164() string { return r.Conf.E164 }

// BeginRestores moves pending-restore conferences to creating on node, in
// room, in bulk: one script run per recoveryChunk. Each is checked on its
// own; its result says whether it began. The error is the store's (the
// results of the chunks that ran come back with it).
func (s *Store) BeginRestores(ctx context.Context, node, room string, e164s []string) ([]RestoreStart, error) {
	items := make([]any, 0, 4*len(e164s))
	for _, e := range e164s {
		items = append(items, "B", e, node, room)
	}
	res, err := s.recover(ctx, 4, items, nil)
	return restoreStarts(res, node, room, e164s), err
}

// MoveRestores is Pend and BeginRestores in one step, for the conferences
// running on a lost node: each one running on from (and not legacy)
// becomes creating on node, in room, with reason recorded. Its result's
// Err is ErrConfNotFound, ErrNodeMismatch, a *StateError or ErrLegacy for
// one that stays.
func (s *Store) MoveRestores(ctx context.Context, from, reason, node, room string, e164s []string) ([]RestoreStart, error) {
	items := make([]any, 0, 6*len(e164s))
	for _, e := range e164s {
		items = append(items, "M", e, from, reason, node, room)
	}
	res, err := s.recover(ctx, 6, items, nil)
	return restoreStarts(res, node, room, e164s), err
}

// MoveRestoresFrom is MoveRestores for conferences of several lost nodes,
// as a failed room's: e164s[i] runs on from[i]. The nodes' moves share
// script runs.
func (s *Store) MoveRestoresFrom(ctx context.Context, reason, node, room string, e164s, from []string) ([]RestoreStart, error) {
	if len(from) != len(e164s) {
		return nil, fmt.Errorf("store: %d conferences moved from %d nodes", len(e164s), len(from))
	}
	items := make([]any, 0, 6*len(e164s))
	for i, e := range e164s {
		items = append(items, "M", e, from[i], reason, node, room)
	}
	res, err := s.recover(ctx, 6, items, nil)
	return restoreStarts(res, node, room, e164s), err
}

// restoreStarts reads the answers of restores begun on node, in room.
func restoreStarts(res []result, node, room string, e164s []string) []RestoreStart {
	out := make([]RestoreStart, len(res))
	now := time.Now().UnixMilli()
	m := make(map[string]string, len(restoreFields)+6)
	for j, r := range res {
		e := e164s[j]
		out[j].Conf.E164 = e
		if out[j].Err = itemErr(r, e); out[j].Err != nil {
			continue
		}
		out[j].Prev, out[j].Monitored = r.str(2), r.str(3) == "1"
		clear(m)
		for k, f := range restoreFields {
			m[f] = r.str(4 + k)
		}
		m["e164"], m["moid"], m["cmu"], m["roommoid"], m["state"] = e, r.str(1), node, room, protocol.StateCreating
		out[j].Conf = parseConf(m)
		out[j].Conf.CreateTime = now
	}
	return out
}

// CommitRestores marks conferences whose restore their node acknowledged
// running there, in bulk. The answer has one error per placement, nil
// where it applied: ErrConfNotFound, ErrNodeMismatch, a *StateError.
func (s *Store) CommitRestores(ctx context.Context, ps []Placement) ([]error, error) {
	items := make([]any, 0, 7*len(ps))
	for _, p := range ps {
		items = append(items, "C", p.E164, p.Node, p.IP, p.PID, p.Room, p.RealPlatform)
	}
	res, err := s.recover(ctx, 7, items, nil)
	return itemErrs(res, func(j int) string { return ps[j].E164 }), err
}

// FailRestores puts conferences whose restore onto node failed back to
// pending-restore, in bulk; one error per number, as CommitRestores.
func (s *Store) FailRestores(ctx context.Context, node, reason string, e164s []string) ([]error, error) {
	items := make([]any, 0, 4*len(e164s))
	for _, e := range e164s {
		items = append(items, "F", e, node, reason)
	}
	res, err := s.recover(ctx, 4, items, nil)
	return itemErrs(res, func(j int) string { return e164s[j] }), err
}

// AdoptMany marks pending-restore conferences that node reports running
// again, in bulk; one error per number, as CommitRestores.
func (s *Store) AdoptMany(ctx context.Context, node string, e164s []string) ([]error, error) {
	items := make([]any, 0, 3*len(e164s))
	for _, e := range e164s {
		items = append(items, "A", e, node)
	}
	res, err := s.recover(ctx, 3, items, nil)
	return itemErrs(res, func(j int) string { return e164s[j] }), err
}

func itemErrs(res []result, e164 func(int) string) []error {
	out := make([]error, len(res))
	for j, r := range res {
		out[j] = itemErr(r, e164(j))
	}
	return out
}

// PendOne marks one conference running on node pending-restore (group
// commit). Errors: ErrConfNotFound, ErrNodeMismatch, a *StateError,
// ErrLegacy.
func (s *Store) PendOne(ctx context.Context, e164, node, reason string) error {
	return s.transition(ctx, e164, "P", e164, node, reason)
}

// BeginRestore moves a pending-restore conference to creating on node, in
// room, and answers the conference and the node it was on before (group
// commit). Errors: ErrConfNotFound, a *StateError (a node report synced it
// back meanwhile).
func (s *Store) BeginRestore(ctx context.Context, e164, node, room string) (c protocol.Conference, prev string, err error) {
	res, err := s.creates.do(ctx, []any{"B", e164, node, room})
	if err != nil {
		return protocol.Conference{}, "", err
	}
	if !res.ok() {
		return protocol.Conference{}, "", res.err(e164)
	}
	m := make(map[string]string, (len(res)-2)/2)
	for i := 2; i+1 < len(res); i += 2 {
		m[res.str(i)] = res.str(i + 1)
	}
	return parseConf(m), m["prevcmu"], nil
}

// FailRestore puts a conference whose restore onto node failed back to
// pending-restore (group commit). Errors: ErrConfNotFound, ErrNodeMismatch,
// a *StateError.
func (s *Store) FailRestore(ctx context.Context, e164, node, reason string) error {
	return s.transition(ctx, e164, "F", e164, node, reason)
}

// Adopt marks a pending-restore conference that its node reports running
// again (group commit). Errors: ErrConfNotFound, ErrNodeMismatch, a
// *StateError.
func (s *Store) Adopt(ctx context.Context, e164, node string) error {
	return s.transition(ctx, e164, "A", e164, node)
}

func (s *Store) transition(ctx context.Context, e164 string, args ...any) error {
	res, err := s.creates.do(ctx, args)
	if err != nil {
		return err
	}
	if !res.ok() {
		return res.err(e164)
	}
	return nil
}

// Pending lists the conferences waiting for a restore.
func (s *Store) Pending(ctx context.Context) ([]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := s.rdb.SMembers(ctx, pendingKey).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return v, nil
}

// PendingAmong answers which of e164s wait for a restore: one read of
// their membership, whatever the number of conferences waiting overall.
func (s *Store) PendingAmong(ctx context.Context, e164s []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(e164s) == 0 {
		return out, nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	members := make([]any, len(e164s))
	for i, e := range e164s {
		members[i] = e
	}
	v, err := s.rdb.SMIsMember(ctx, pendingKey, members...).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	for i, in := range v {
		if in {
			out[e164s[i]] = true
		}
	}
	return out, nil
}

// AcquireLease takes the platform's scheduler lease for holder, or renews
// it, for ttl. Errors: ErrLeaseHeld (with the holder).
func (s *Store) AcquireLease(ctx context.Context, platform, holder string, ttl time.Duration) error {
	_, err := s.run(ctx, leaseScript, "", "acquire", leaseKey(platform), holder, strconv.FormatInt(ttl.Milliseconds(), 10))
	return err
}

// ReleaseLease frees holder's lease, if it still holds it.
func (s *Store) ReleaseLease(ctx context.Context, platform, holder string) error {
	_, err := s.run(ctx, leaseScript, "", "release", leaseKey(platform), holder, "0")
	return err
}

// CreatingSince lists the conferences whose create or restore began before
// t (Unix ms) and is not finished: candidates for the sweep of work a dead
// scheduler left halfway.
func (s *Store) CreatingSince(ctx context.Context, t int64) ([]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := s.rdb.ZRangeByScore(ctx, creatingKey, &redis.ZRangeBy{Min: "-inf", Max: "(" + strconv.FormatInt(t, 10)}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return v, nil
}
