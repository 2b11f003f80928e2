package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
)

// Numbering says where a new number comes from: the source platform's
// segment (000 §10).
type Numbering struct {
	Platform string // its counter lives under this platform's key
	Segment  string // prefix
	Digits   int    // digits after the prefix
}

// Reservation is what a create asks of the store before any node is
// involved.
type Reservation struct {
	Conf      protocol.Conference // E164 empty to allocate one
	Class     license.Class
	Numbering Numbering
}

// Reserve checks the domain, checks and counts the licence, takes the
// number and writes the conference as creating: one atomic step. It returns
// the number. Errors: ErrDomainNotFound, ErrDomainDisabled, a *LicenseError,
// ErrE164InUse, ErrE164Exhausted.
func (s *Store) Reserve(ctx context.Context, r Reservation) (string, error) {
	p, err := s.StartReserve(ctx, r)
	if err != nil {
		return "", err
	}
	return p.Wait()
}

// PendingReserve is a reservation on its way to the store.
type PendingReserve struct {
	it                  *batchItem
	e164, domain, class string // what Wait's errors name
}

// StartReserve queues a reservation and returns at once, so that the
// caller can do other work while it runs; Wait has its outcome, which is
// Reserve's. A queued reservation runs even if ctx ends.
func (s *Store) StartReserve(ctx context.Context, r Reservation) (*PendingReserve, error) {
	class := r.Class.String()
	args := make([]any, 0, 9+24)
	args = append(args, "R", r.Conf.E164, r.Conf.Domain, class, e164SeqKey(r.Numbering.Platform),
		r.Numbering.Segment, strconv.Itoa(r.Numbering.Digits), strconv.FormatInt(r.Conf.EndTime, 10),
		"") // the number of fields, below
	args = appendConfFields(args, &r.Conf)
	args[8] = strconv.Itoa((len(args) - 9) / 2)
	it, err := s.creates.submit(ctx, args)
	if err != nil {
		return nil, err
	}
	return &PendingReserve{it: it, e164: r.Conf.E164, domain: r.Conf.Domain, class: class}, nil
}

// Wait returns the reserved number, or why the reservation was refused.
func (p *PendingReserve) Wait() (string, error) {
	res, err := p.it.wait()
	if err != nil {
		return "", err
	}
	if !res.ok() {
		if res.str(1) == "LICENSE_EXHAUSTED" {
			var used, limit int
			fmt.Sscanf(res.str(2), "%d/%d", &used, &limit)
			return "", &LicenseError{Domain: p.domain, Class: p.class, InUse: used, Limit: limit}
		}
		return "", res.err(p.e164)
	}
	return res.str(1), nil
}

// Placement is where a node acknowledged a conference.
type Placement struct {
	E164         string
	Node         string
	IP           string
	PID          string
	Room         string
	RealPlatform string
}

// Commit marks a creating conference running on the node that acknowledged
// it, and returns its user domain. Errors: ErrConfNotFound, a *StateError.
func (s *Store) Commit(ctx context.Context, p Placement) (string, error) {
	res, err := s.creates.do(ctx, []any{"C", p.E164, p.Node, p.IP, p.PID, p.Room, p.RealPlatform})
	if err != nil {
		return "", err
	}
	if !res.ok() {
		return "", res.err(p.E164)
	}
	return res.str(1), nil
}

// ReleaseCond restricts a release to a conference in a given state or on a
// given node; empty fields match anything.
type ReleaseCond struct {
	State string
	Node  string
}

// Release ends a conference: its licence count, domain entry, node entry,
// end-time entry and monitoring sessions go with it, atomically. It returns
// the conference as it was. Errors: ErrConfNotFound, a *StateError,
// ErrNodeMismatch.
func (s *Store) Release(ctx context.Context, e164 string, cond ReleaseCond) (protocol.Conference, error) {
	res, err := s.run(ctx, releaseScript, e164, e164, cond.State, cond.Node)
	if err != nil {
		return protocol.Conference{}, err
	}
	m := make(map[string]string, (len(res)-1)/2)
	for i := 1; i+1 < len(res); i += 2 {
		m[res.str(i)] = res.str(i + 1)
	}
	return parseConf(m), nil
}

// Delay pushes a conference's end back by minutes and returns the new end
// time (Unix ms) and length. Errors: ErrConfNotFound, a *StateError for a
// conference still creating.
func (s *Store) Delay(ctx context.Context, e164 string, minutes int) (endTime int64, duration int, err error) {
	return s.DelayWithin(ctx, e164, minutes, 0)
}

// DelayWithin is Delay that refuses to make the conference's booked length
// longer than limit minutes (0: no limit), checked in the same atomic step.
// Errors: Delay's, and a *DurationError (ErrDurationLimit).
func (s *Store) DelayWithin(ctx context.Context, e164 string, minutes, limit int) (endTime int64, duration int, err error) {
	res, err := s.run(ctx, delayScript, e164, e164, strconv.Itoa(minutes), strconv.Itoa(limit))
	if err != nil {
		return 0, 0, err
	}
	endTime, _ = strconv.ParseInt(res.str(1), 10, 64)
	duration, _ = strconv.Atoi(res.str(2))
	return endTime, duration, nil
}

// Update sets fields of an existing conference (name, password, flags).
// Errors: ErrConfNotFound.
func (s *Store) Update(ctx context.Context, e164 string, kv ...string) error {
	if len(kv)%2 != 0 {
		return errors.New("store: Update needs field, value pairs")
	}
	args := make([]any, 0, 1+len(kv))
	args = append(args, e164)
	for _, v := range kv {
		args = append(args, v)
	}
	_, err := s.run(ctx, updateScript, e164, args...)
	return err
}

// Conference reads one conference. Errors: ErrConfNotFound.
func (s *Store) Conference(ctx context.Context, e164 string) (protocol.Conference, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	m, err := s.rdb.HGetAll(ctx, confKey(e164)).Result()
	if err != nil {
		return protocol.Conference{}, fmt.Errorf("store: %w", err)
	}
	if len(m) == 0 {
		return protocol.Conference{}, fmt.Errorf("%w: %s", ErrConfNotFound, e164)
	}
	return parseConf(m), nil
}

// Exists reports whether a conference exists (001 §2.1 item 4).
func (s *Store) Exists(ctx context.Context, e164 string) (bool, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := s.rdb.Exists(ctx, confKey(e164)).Result()
	if err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	return n == 1, nil
}

// Conferences reads many conferences in one round trip; numbers that do not
// exist are left out.
func (s *Store) Conferences(ctx context.Context, e164s []string) ([]protocol.Conference, error) {
	if len(e164s) == 0 {
		return nil, nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	pipe := s.rdb.Pipeline()
	cmds := make([]interface {
		Result() (map[string]string, error)
	}, len(e164s))
	for i, e := range e164s {
		cmds[i] = pipe.HGetAll(ctx, confKey(e))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	out := make([]protocol.Conference, 0, len(e164s))
	for _, c := range cmds {
		m, err := c.Result()
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		if len(m) > 0 {
			out = append(out, parseConf(m))
		}
	}
	return out, nil
}

// DomainConferences lists a user domain's conferences in every state.
func (s *Store) DomainConferences(ctx context.Context, moid string) ([]protocol.Conference, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	states, err := s.rdb.HGetAll(ctx, domainConfsKey(moid)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	e164s := make([]string, 0, len(states))
	for e := range states {
		e164s = append(e164s, e)
	}
	return s.Conferences(ctx, e164s)
}

// ListFilter narrows the running-conference list (001 §2.1 item 2).
type ListFilter struct {
	// PublicOnly leaves out conferences that are not public.
	PublicOnly bool
	// Terminal, when set, leaves out closed conferences that terminal
	// (an alias or e164) is not invited to.
	Terminal string
}

// Keep reports whether c passes the filter.
func (f ListFilter) Keep(c *protocol.Conference) bool {
	if f.PublicOnly && !c.Public {
		return false
	}
	if f.Terminal != "" && c.Closed() {
		for _, a := range c.Invited {
			if a == f.Terminal {
				return true
			}
		}
		return false
	}
	return true
}

// NodeConferences lists the numbers the store attributes to a node.
func (s *Store) NodeConferences(ctx context.Context, node string) ([]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := s.rdb.SMembers(ctx, nodeConfsKey(node)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return v, nil
}

// NodeLoads counts the conferences the store attributes to each node.
func (s *Store) NodeLoads(ctx context.Context, nodes []string) (map[string]int, error) {
	out := make(map[string]int, len(nodes))
	if len(nodes) == 0 {
		return out, nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	pipe := s.rdb.Pipeline()
	cmds := make(map[string]interface{ Result() (int64, error) }, len(nodes))
	for _, n := range nodes {
		cmds[n] = pipe.SCard(ctx, nodeConfsKey(n))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	for n, c := range cmds {
		v, _ := c.Result()
		out[n] = int(v)
	}
	return out, nil
}

// EndingBefore lists conferences whose end time is at or before t (Unix ms).
func (s *Store) EndingBefore(ctx context.Context, t int64) ([]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := s.rdb.ZRangeByScore(ctx, endTimesKey, &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(t, 10)}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return v, nil
}

// appendConfFields appends the hash form of the fields a create writes
// beyond those the reserve script sets itself, as field, value pairs.
func appendConfFields(args []any, c *protocol.Conference) []any {
	invited, _ := json.Marshal(c.Invited)
	if c.Invited == nil {
		invited = []byte("[]")
	}
	return append(args,
		"confname", c.Name,
		"platformmoid", c.Platform,
		"realplatformmoid", c.RealPlatform,
		"scale", strconv.Itoa(c.Scale),
		"resolution", c.Resolution,
		"password", c.Password,
		"public", boolStr(c.Public),
		"invited", string(invited),
		"recording", boolStr(c.Recording),
		"booktime", strconv.FormatInt(c.BookTime, 10),
		"duration", strconv.Itoa(c.DurationMinutes),
		"legacy", boolStr(c.Legacy),
	)
}

func parseConf(m map[string]string) protocol.Conference {
	c := protocol.Conference{
		E164:             m["e164"],
		Name:             m["confname"],
		Domain:           m["moid"],
		Platform:         m["platformmoid"],
		RealPlatform:     m["realplatformmoid"],
		Room:             m["roommoid"],
		Node:             m["cmu"],
		NodeIP:           m["mcuip"],
		NodePID:          m["mcupid"],
		State:            m["state"],
		Reason:           m["reason"],
		Resolution:       m["resolution"],
		Password:         m["password"],
		Public:           m["public"] == "1",
		Recording:        m["recording"] == "1",
		Legacy:           m["legacy"] == "1",
		WillEndNotified:  m["willendntf"] == "1",
		LastRestoreError: m["lastrestoreerr"],
	}
	c.Scale, _ = strconv.Atoi(m["scale"])
	c.DurationMinutes, _ = strconv.Atoi(m["duration"])
	c.RestoreAttempts, _ = strconv.Atoi(m["restoreattempts"])
	c.BookTime, _ = strconv.ParseInt(m["booktime"], 10, 64)
	c.CreateTime, _ = strconv.ParseInt(m["createtime"], 10, 64)
	c.PlacedAt, _ = strconv.ParseInt(m["placedat"], 10, 64)
	c.RealStartTime, _ = strconv.ParseInt(m["realstarttime"], 10, 64)
	c.EndTime, _ = strconv.ParseInt(m["endtime"], 10, 64)
	if v := m["invited"]; v != "" && v != "[]" {
		_ = json.Unmarshal([]byte(v), &c.Invited)
	}
	if c.Scale == 0 {
		// Older records may only carry the class.
		if cl, err := license.ParseClass(m["licclass"]); err == nil {
			c.Scale, c.Resolution = cl.Scale, cl.Resolution
		}
	}
	return c
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// AllConferences reads every conference in the store (a SCAN: for start-up
// and consistency checks, not for hot paths).
func (s *Store) AllConferences(ctx context.Context) ([]protocol.Conference, error) {
	var (
		keys   []string
		cursor uint64
	)
	for {
		cctx, cancel := s.ctx(ctx)
		batch, next, err := s.rdb.Scan(cctx, cursor, "confex/*/", 1000).Result()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		keys = append(keys, batch...)
		if next == 0 {
			break
		}
		cursor = next
	}
	e164s := make([]string, 0, len(keys))
	for _, k := range keys {
		e164s = append(e164s, k[len("confex/"):len(k)-1])
	}
	var out []protocol.Conference
	for i := 0; i < len(e164s); i += 1000 {
		j := min(i+1000, len(e164s))
		part, err := s.Conferences(ctx, e164s[i:j])
		if err != nil {
			return nil, err
		}
		out = append(out, part...)
	}
	return out, nil
}

// Brief reads the fields reconciliation needs (state, node, ip, pid, room,
// create time, placing time, real platform, legacy, domain) of many conferences in one
// round trip; numbers that do not exist are left out of the map.
func (s *Store) Brief(ctx context.Context, e164s []string) (map[string]protocol.Conference, error) {
	out := make(map[string]protocol.Conference, len(e164s))
	if len(e164s) == 0 {
		return out, nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	fields := []string{"state", "cmu", "mcuip", "mcupid", "roommoid", "createtime", "placedat", "realplatformmoid", "legacy", "moid"}
	pipe := s.rdb.Pipeline()
	cmds := make([]interface{ Result() ([]any, error) }, len(e164s))
	for i, e := range e164s {
		cmds[i] = pipe.HMGet(ctx, confKey(e), fields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	for i, c := range cmds {
		v, err := c.Result()
		if err != nil || len(v) != len(fields) || v[0] == nil {
			continue
		}
		m := make(map[string]string, len(fields))
		for j, f := range fields {
			m[f] = str(v[j])
		}
		m["e164"] = e164s[i]
		out[e164s[i]] = parseConf(m)
	}
	return out, nil
}

// DomainStates reads a user domain's conference list: number → state.
func (s *Store) DomainStates(ctx context.Context, moid string) (map[string]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := s.rdb.HGetAll(ctx, domainConfsKey(moid)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return v, nil
}
