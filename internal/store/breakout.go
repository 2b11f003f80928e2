package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Breakout state (seed 002, SPEC §5). The breakout service owns the
// documents; the store keeps them, versioned, and changes them atomically:
//
//	breakout/<e164>          hash: version, meta (JSON), node, sent, updated
//	breakout/<e164>/users    hash: user key -> user (JSON)
//	breakouts/countdown      zset: e164 -> deadline (Unix ms) of a closing countdown
//	breakouts/all            set: conferences with breakout state
//	breakouts/instances      zset: breakout-service instance -> last beat (Unix ms)
//	breakouts/secret         string: the key that signs WebSocket tickets
//	breakouts/tickets[/until] the redemptions of tickets (ticket.go)
const (
	breakoutCountdownKey = "breakouts/countdown"
	breakoutAllKey       = "breakouts/all"
	breakoutInstancesKey = "breakouts/instances"
	breakoutSecretKey    = "breakouts/secret"
)

var breakoutScript = script("breakout")

var (
	// ErrBreakoutConflict means the breakout state changed since the
	// version a change was computed from: read it again and redo.
	ErrBreakoutConflict = errors.New("store: the breakout state changed meanwhile")
	// ErrConfNotRunning means a change that needs a running conference
	// found it in another state.
	ErrConfNotRunning = errors.New("store: the conference is not running")
)

// BreakoutRecord is a conference's breakout state as stored. Version 0
// means there is none.
type BreakoutRecord struct {
	E164    string
	Version int64
	// Sent is the highest version whose audio plan reached the media node.
	Sent  int64
	Meta  []byte
	Users map[string][]byte
}

// BreakoutChange is one atomic change of a conference's breakout state.
type BreakoutChange struct {
	E164 string
	// Version is the version the change was computed from (0: there must
	// be no state yet). A different stored version fails the change with
	// ErrBreakoutConflict.
	Version int64
	// Conf, when set, is a condition on the conference: "exists" or
	// "running" (protocol.StateRunning).
	Conf string
	// Meta replaces the meta document when not nil, and Node with it the
	// media node the state's audio plan goes to.
	Meta []byte
	Node string
	// SetUsers and DelUsers change user documents by key.
	SetUsers map[string][]byte
	DelUsers []string
	// Countdown: > 0 sets the closing deadline (Unix ms), < 0 clears it,
	// 0 leaves it.
	Countdown int64
	// Now is the time of the change (Unix ms).
	Now int64
}

// Breakout reads a conference's breakout state in one atomic step; a
// conference without any has Version 0.
func (s *Store) Breakout(ctx context.Context, e164 string) (BreakoutRecord, error) {
	r, err := s.read(ctx, breakoutScript, e164, "load", e164)
	if err != nil {
		return BreakoutRecord{}, err
	}
	rec := BreakoutRecord{E164: e164, Meta: []byte(r.str(2)), Users: make(map[string][]byte, (len(r)-4)/2)}
	rec.Version, _ = strconv.ParseInt(r.str(1), 10, 64)
	rec.Sent, _ = strconv.ParseInt(r.str(3), 10, 64)
	for i := 4; i+1 < len(r); i += 2 {
		rec.Users[r.str(i)] = []byte(r.str(i + 1))
	}
	return rec, nil
}

// ApplyBreakout applies a change and returns the new version. Errors:
// ErrBreakoutConflict, ErrConfNotFound, ErrConfNotRunning.
func (s *Store) ApplyBreakout(ctx context.Context, c BreakoutChange) (int64, error) {
	countdown := ""
	switch {
	case c.Countdown > 0:
		countdown = strconv.FormatInt(c.Countdown, 10)
	case c.Countdown < 0:
		countdown = "0"
	}
	args := make([]any, 0, 10+2*len(c.SetUsers)+len(c.DelUsers))
	args = append(args, "apply", c.E164, strconv.FormatInt(c.Version, 10), c.Conf, string(c.Meta), countdown,
		strconv.FormatInt(c.Now, 10), c.Node, strconv.Itoa(len(c.SetUsers)))
	for k, v := range c.SetUsers {
		args = append(args, k, string(v))
	}
	args = append(args, strconv.Itoa(len(c.DelUsers)))
	for _, k := range c.DelUsers {
		args = append(args, k)
	}
	r, err := s.run(ctx, breakoutScript, c.E164, args...)
	if err != nil {
		if r != nil {
			switch r.str(1) {
			case "CONFLICT":
				return 0, fmt.Errorf("%w: %s is at version %s, not %d", ErrBreakoutConflict, c.E164, r.str(2), c.Version)
			case "CONF_NOT_RUNNING":
				return 0, fmt.Errorf("%w: %s is %s", ErrConfNotRunning, c.E164, r.str(2))
			}
		}
		return 0, err
	}
	v, _ := strconv.ParseInt(r.str(1), 10, 64)
	return v, nil
}

// DeleteBreakout removes a conference's breakout state, its countdown
// and its index entry; deleting none is no error.
func (s *Store) DeleteBreakout(ctx context.Context, e164 string) error {
	_, err := s.run(ctx, breakoutScript, e164, "delete", e164)
	return err
}

// MarkBreakoutSent records that the audio plan of version reached the
// media node (kept only if higher than the last one recorded).
func (s *Store) MarkBreakoutSent(ctx context.Context, e164 string, version int64) error {
	_, err := s.run(ctx, breakoutScript, e164, "sent", e164, strconv.FormatInt(version, 10))
	return err
}

// BreakoutHead is what a conference's breakout state says of itself
// without its documents.
type BreakoutHead struct {
	Version int64
	// Sent is the highest version whose audio plan reached the media node.
	Sent int64
	// Updated is when the state last changed (Unix ms).
	Updated int64
	// Node is the media node its audio plan goes to.
	Node string
}

// BreakoutHead reads a conference's breakout head (the zero head when it
// has no breakout state).
func (s *Store) BreakoutHead(ctx context.Context, e164 string) (BreakoutHead, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := s.rdb.HMGet(ctx, "breakout/"+e164, "version", "sent", "updated", "node").Result()
	if err != nil {
		return BreakoutHead{}, fmt.Errorf("store: %w", err)
	}
	var h BreakoutHead
	h.Version, _ = strconv.ParseInt(str(v[0]), 10, 64)
	h.Sent, _ = strconv.ParseInt(str(v[1]), 10, 64)
	h.Updated, _ = strconv.ParseInt(str(v[2]), 10, 64)
	h.Node = str(v[3])
	return h, nil
}

// DueBreakoutCountdowns lists the conferences whose closing countdown ends
// at or before now (Unix ms).
func (s *Store) DueBreakoutCountdowns(ctx context.Context, now int64) ([]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := s.rdb.ZRangeByScore(ctx, breakoutCountdownKey, &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(now, 10)}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return v, nil
}

// BreakoutConferences lists the conferences that have breakout state.
func (s *Store) BreakoutConferences(ctx context.Context) ([]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := s.rdb.SMembers(ctx, breakoutAllKey).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return v, nil
}

// WithBreakout answers which of the conferences have breakout state, by
// the index of them: one command per 1,000 conferences, not a read each.
func (s *Store) WithBreakout(ctx context.Context, e164s []string) (map[string]bool, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	out := map[string]bool{}
	for len(e164s) > 0 {
		chunk := e164s[:min(len(e164s), 1000)]
		e164s = e164s[len(chunk):]
		members := make([]any, len(chunk))
		for i, e := range chunk {
			members[i] = e
		}
		v, err := s.rdb.SMIsMember(ctx, breakoutAllKey, members...).Result()
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		for i, in := range v {
			if in {
				out[chunk[i]] = true
			}
		}
	}
	return out, nil
}

// BeatBreakoutInstance records that a breakout-service instance is alive
// at now (Unix ms).
func (s *Store) BeatBreakoutInstance(ctx context.Context, instance string, now int64) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if err := s.rdb.ZAdd(ctx, breakoutInstancesKey, redis.Z{Score: float64(now), Member: instance}).Err(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// BreakoutInstances reads every instance's last beat (Unix ms).
func (s *Store) BreakoutInstances(ctx context.Context) (map[string]int64, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	zs, err := s.rdb.ZRangeWithScores(ctx, breakoutInstancesKey, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	out := make(map[string]int64, len(zs))
	for _, z := range zs {
		out[fmt.Sprint(z.Member)] = int64(z.Score)
	}
	return out, nil
}

// ForgetBreakoutInstance removes an instance from the beat index.
func (s *Store) ForgetBreakoutInstance(ctx context.Context, instance string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if err := s.rdb.ZRem(ctx, breakoutInstancesKey, instance).Err(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// BreakoutSecret returns the key every breakout-service instance signs
// WebSocket tickets with, making it on first use.
func (s *Store) BreakoutSecret(ctx context.Context) ([]byte, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := s.rdb.SetNX(ctx, breakoutSecretKey, fresh, 0).Err(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	v, err := s.rdb.Get(ctx, breakoutSecretKey).Bytes()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return v, nil
}
