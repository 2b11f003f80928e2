package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convene/convene/internal/protocol"
)

// Pend marks the given conferences of a node pending-restore, atomically in
// chunks: those running on that node move, the others (another node, not
// running, legacy) are left and reported in skipped. It answers the numbers
// that moved. After each chunk, progress (when set) hears how many moved so
// far, so that restores can start before the last chunk.
func (s *Store) Pend(ctx context.Context, node, reason string, e164s []string, progress func(moved int)) (moved []string, skipped map[string]error, err error) {
	skipped = map[string]error{}
	const chunk = 1000
	for i := 0; i < len(e164s); i += chunk {
		if i > 0 && progress != nil {
			progress(len(moved))
		}
		part := e164s[i:min(i+chunk, len(e164s))]
		args := make([]any, 0, 2+4*len(part))
		args = append(args, strconv.FormatInt(time.Now().UnixMilli(), 10), strconv.Itoa(len(part)))
		for _, e := range part {
			args = append(args, "P", e, node, reason)
		}
		ctx, cancel := s.writeCtx(ctx)
		v, err := evalOp(ctx, s.wdb, createScript, newOpID(), args)
		cancel()
		if err != nil {
			return moved, skipped, fmt.Errorf("store: %w", err)
		}
		all, ok := v.([]any)
		if !ok || len(all) != len(part) {
			return moved, skipped, fmt.Errorf("store: pend reply has %d results for %d items", len(all), len(part))
		}
		for j, e := range part {
			r, err := asResult(all[j])
			switch {
			case err != nil:
				skipped[e] = err
			case r.ok():
				moved = append(moved, e)
			default:
				skipped[e] = r.err(e)
			}
		}
	}
	return moved, skipped, nil
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
