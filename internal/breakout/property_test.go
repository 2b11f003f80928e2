package breakout_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/protocol"
)

// Random sequences of operations keep the invariants: a user is in at most
// one room (and in one exactly while in the conference), the main room has
// at most 16 speakers, phone users and everyone outside running rooms are
// in the main room, and the plan the node holds is the plan derived from
// the stored state.
//
// BREAKOUT_SEED=n replays a run; BREAKOUT_SEQUENCES=n sets how many.
func TestPropertyRandomOperations(t *testing.T) {
	seed := uint64(20240323)
	if v, err := strconv.ParseUint(os.Getenv("BREAKOUT_SEED"), 10, 64); err == nil {
		seed = v
	}
	sequences := 100
	if v, err := strconv.Atoi(os.Getenv("BREAKOUT_SEQUENCES")); err == nil {
		sequences = v
	}
	if testing.Short() {
		sequences = 20
	}
	var offset atomic.Int64 // the services' clock runs ahead by this (ns)
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	e := start(t, setup{clock: clock})
	in := e.insts[0]
	rng := rand.New(rand.NewPCG(seed, 0))
	for seq := range sequences {
		g := &gen{t: t, e: e, in: in, rng: rng, e164: e.conference(), offset: &offset, online: map[uint32]string{}}
		for step := range 80 {
			op := g.step()
			g.log = append(g.log, op)
			if err := g.check(); err != nil {
				t.Fatalf("seed %d, sequence %d, step %d: %v\noperations:\n  %s", seed, seq, step, err, strings.Join(g.log, "\n  "))
			}
		}
	}
}

// gen plays random operations on one conference.
type gen struct {
	t       *testing.T
	e       *env
	in      *instance
	rng     *rand.Rand
	e164    string
	offset  *atomic.Int64
	online  map[uint32]string // user id -> session
	roles   map[uint32]bool   // user id -> host
	n       int
	log     []string
	version int64
}

const poolSize = 40

func umsOf(id uint32) uint32 {
	if id%3 == 0 {
		return 900 + id
	}
	return 0
}

func (g *gen) pick(n int) int { return g.rng.IntN(n) }

func (g *gen) user() uint32 { return uint32(1 + g.pick(poolSize+1)) } // poolSize+1: sometimes nobody

// target is mostly a user in the conference, sometimes anyone.
func (g *gen) target() uint32 {
	if ids := g.onlineIDs(); len(ids) > 0 && g.pick(5) > 0 {
		return ids[g.pick(len(ids))]
	}
	return g.user()
}

func (g *gen) room() uint32 {
	return []uint32{0, breakout.MainRoom, 10, 20, 30, 40, 99}[g.pick(7)]
}

func (g *gen) priv() uint32 { return uint32(g.pick(4)) }

// actor is the operator, or a user in the conference with its role.
func (g *gen) actor() breakout.Actor {
	if g.pick(4) == 0 || len(g.online) == 0 {
		return breakout.Operator
	}
	ids := g.onlineIDs()
	id := ids[g.pick(len(ids))]
	return breakout.Actor{UserID: id, Host: g.roles[id]}
}

func (g *gen) onlineIDs() []uint32 {
	ids := make([]uint32, 0, len(g.online))
	for id := range g.online {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (g *gen) step() string {
	ctx := context.Background()
	s := g.in.svc
	switch k := g.pick(15); k {
	case 0, 1, 12, 13, 14: // join
		id := g.user()
		if _, on := g.online[id]; on {
			return "join: already in"
		}
		g.n++
		session := fmt.Sprintf("%s/p%d", s.Instance(), g.n)
		w := breakout.Identity{UserID: id, UmsID: umsOf(id), Audio: uint32(min(2, g.pick(5)))}
		if g.pick(7) == 0 {
			w.Client = protocol.ClientPhone
		}
		if g.pick(4) == 0 {
			w.Role = protocol.RoleHost
		}
		st := s.TestJoin(ctx, g.e164, w, session)
		if st == 0 {
			g.online[id] = session
			if g.roles == nil {
				g.roles = map[uint32]bool{}
			}
			g.roles[id] = w.Role == protocol.RoleHost
		}
		return fmt.Sprintf("join %+v -> %d", w, st)
	case 2: // leave
		ids := g.onlineIDs()
		if len(ids) == 0 {
			return "leave: nobody"
		}
		id := ids[g.pick(len(ids))]
		sess := g.online[id]
		delete(g.online, id)
		return fmt.Sprintf("leave %d -> %d", id, s.TestLeave(ctx, g.e164, sess))
	case 3: // start
		a := g.actor()
		var rooms []protocol.BreakoutRoomInfo
		used := map[uint32]bool{}
		for range 1 + g.pick(4) {
			id := []uint32{10, 20, 30, 40, breakout.MainRoom}[g.pick(5)]
			if used[id] {
				continue
			}
			used[id] = true
			rooms = append(rooms, protocol.BreakoutRoomInfo{RoomID: id, Name: "r", MixerMode: uint32(g.pick(2))})
		}
		listed := map[uint32]bool{}
		for range g.pick(poolSize) {
			id := g.user()
			if listed[id] || len(rooms) == 0 {
				continue
			}
			listed[id] = true
			r := &rooms[g.pick(len(rooms))]
			cur := uint32(0)
			if g.pick(2) == 0 {
				cur = g.room()
			}
			r.UserItems = append(r.UserItems, protocol.BreakoutRoomUserItem{
				UserID: id, UserUmsID: umsOf(id), UserCurrentRoomID: cur, Privilege: g.priv(),
			})
		}
		st := s.TestStart(ctx, g.e164, a, protocol.BreakoutRoomsStart{Type: protocol.BMSBreakoutRoomsStart, ConfID: g.e164, RoomInfos: rooms})
		return fmt.Sprintf("start by %+v %+v -> %d", a, rooms, st)
	case 4, 5: // move
		a := g.actor()
		d := protocol.BreakoutRoomUserItem{UserID: g.target(), UserCurrentRoomID: g.room()}
		if a.UserID != 0 && g.pick(2) == 0 {
			d.UserID = a.UserID
		}
		if g.pick(3) == 0 {
			d.UserUmsID = umsOf(d.UserID)
		}
		if g.pick(4) == 0 {
			d.UserPresetRoomID = g.room()
		}
		if g.pick(4) == 0 {
			d.Privilege = g.priv()
		}
		st := s.TestMove(ctx, g.e164, a, protocol.SetUserBreakoutRoom{Type: protocol.BMSSetUserBreakoutRoom, ConfID: g.e164, OperatorID: a.UserID, DestItem: d})
		return fmt.Sprintf("move by %+v %+v -> %d", a, d, st)
	case 6: // stop
		a := g.actor()
		delay := []uint32{0, 0, 5}[g.pick(3)]
		return fmt.Sprintf("stop by %+v delay %d -> %d", a, delay, s.TestStop(ctx, g.e164, a, delay))
	case 7: // time passes
		g.offset.Add(int64(6 * time.Second))
		s.TestExpire(ctx, g.e164)
		return "6 s pass"
	case 8: // record
		a, r := g.actor(), g.room()
		return fmt.Sprintf("record %d by %+v -> %d", r, a, s.TestRecord(ctx, g.e164, a, r))
	case 9: // subscribe
		a, u := g.actor(), g.target()
		var subs []protocol.BreakoutRoomSubscribeInfo
		for range g.pick(4) {
			subs = append(subs, protocol.BreakoutRoomSubscribeInfo{RoomID: g.room(), Privilege: g.priv()})
		}
		req := protocol.UserSubscribeInBreakoutRoom{Type: protocol.AudioUserSubscribeInBreakout, ConfID: g.e164, User: u, SubscribeInfos: subs}
		return fmt.Sprintf("subscribe %d to %+v by %+v -> %d", u, subs, a, s.TestSubscribe(ctx, g.e164, a, req))
	case 10: // mute
		a := g.actor()
		req := protocol.UserMute{Type: protocol.AudioUserMute, ConfID: g.e164, UserID: g.target(), Mode: uint32(g.pick(7)), GroupID: g.room()}
		return fmt.Sprintf("mute %+v by %+v -> %d", req, a, s.TestMute(ctx, g.e164, a, req))
	default: // audio state
		a := g.actor()
		req := protocol.UserAudioState{Type: protocol.AudioUserAudioState, ConfID: g.e164, UserID: g.target(), AudioState: uint32(g.pick(4))}
		return fmt.Sprintf("audio %+v by %+v -> %d", req, a, s.TestAudio(ctx, g.e164, a, req))
	}
}

// check verifies the invariants on the stored state and the node.
func (g *gen) check() error {
	st, _, err := g.in.svc.Snapshot(context.Background(), g.e164)
	if err != nil {
		return err
	}
	if st.Version < g.version {
		return fmt.Errorf("version went back from %d to %d", g.version, st.Version)
	}
	g.version = st.Version
	rooms := map[uint32]bool{}
	for _, r := range st.Meta.Rooms {
		rooms[r.ID] = true
	}
	if len(st.Meta.Rooms) == 0 || st.Meta.Rooms[0].ID != breakout.MainRoom {
		return fmt.Errorf("the main room is not the plan's first: %+v", st.Meta.Rooms)
	}
	ids := map[uint32]bool{}
	for k, u := range st.Users {
		if !rooms[u.Preset] {
			return fmt.Errorf("user %s has preset room %d, not in the plan", k, u.Preset)
		}
		if !u.Online() {
			if u.Current != 0 || len(u.Subs) > 0 {
				return fmt.Errorf("user %s is out of the conference but in room %d with %d subscriptions", k, u.Current, len(u.Subs))
			}
			continue
		}
		if ids[u.UserID] {
			return fmt.Errorf("two users in the conference have user id %d", u.UserID)
		}
		ids[u.UserID] = true
		if !rooms[u.Current] {
			return fmt.Errorf("user %s is in room %d, not in the plan", k, u.Current)
		}
		if (!st.Meta.Active || u.Phone()) && (u.Current != breakout.MainRoom || len(u.Subs) > 0) {
			return fmt.Errorf("user %s (phone %t, rooms running %t) is in room %d with %d subscriptions", k, u.Phone(), st.Meta.Active, u.Current, len(u.Subs))
		}
	}
	if !st.Meta.Active && st.Meta.Deadline != 0 {
		return fmt.Errorf("a countdown without running rooms")
	}
	main := 0
	for _, h := range breakout.Hearings(st) {
		if slices.Contains(h.SpeaksIn, breakout.MainRoom) {
			main++
		}
	}
	if main > 16 {
		return fmt.Errorf("%d speakers in the main room", main)
	}
	plan := breakout.Derive(st)
	seen := map[uint32]int{}
	for _, r := range plan.Rooms {
		for _, u := range r.UserInfos {
			seen[u.UserID]++
		}
	}
	for id, n := range seen {
		if n != 1 || !ids[id] {
			return fmt.Errorf("user %d is in %d rooms of the plan (in the conference: %t)", id, n, ids[id])
		}
	}
	if len(seen) != len(ids) {
		return fmt.Errorf("%d users in the conference, %d in the plan's rooms", len(ids), len(seen))
	}
	if st.Version == 0 {
		return nil
	}
	deadline := time.Now().Add(wait)
	for {
		err := plan.Check(applied(g.e.node(g.e164), g.e164))
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the node does not follow the plan of version %d: %w", st.Version, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
