package breakout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

// The conference ends: its clients get a final notify and are
// disconnected, and its breakout state is gone from the store.
func TestConferenceEndEndsBreakout(t *testing.T) {
	e := start(t, setup{insts: 2})
	a, b := e.insts[0], e.insts[1]
	e164 := e.conference()
	host := e.connect(a, e164, who{id: 1, host: true})
	u2 := e.connect(b, e164, who{id: 2, ums: 902})
	e.rooms10and20(a, e164, host, []*user{u2}, nil, u2)

	if err := e.client.EndConference(context.Background(), e164); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*user{host, u2} {
		n := decode[protocol.BreakoutRoomsStopNotify](t, u.expect(protocol.BMSBreakoutRoomsStopNotify, status(protocol.BreakoutConfEnded)))
		if n.Message == "" {
			t.Fatal("the final notify must say why")
		}
		if code := websocket.CloseStatus(u.closed()); code != 4001 {
			t.Fatalf("user %d closed with %d, want 4001 (conference ended)", u.id, code)
		}
	}
	testkit.Eventually(t, wait, testkit.Cond("breakout state removed", func() bool {
		keys, err := e.st.Store.Client().Keys(context.Background(), "breakout*").Result()
		if err != nil {
			t.Fatal(err)
		}
		all, err := e.st.Store.BreakoutConferences(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if strings.Contains(k, e164) {
				return false
			}
		}
		return len(all) == 0
	}))
	// A new client of the ended conference is refused before the upgrade.
	if _, err := breakout.Dial(context.Background(), a.base, "/v1/conferences/"+e164+"/breakout/ws?ticket=x"); err == nil {
		t.Fatal("connected to an ended conference")
	}
	var eb = struct{}{}
	if code, body := rest(t, a, "POST", "/v1/conferences/"+e164+"/breakout/start", token, breakout.StartRequest{}, &eb); code != 409 || body.Error.Code != protocol.ErrConfNotRunning {
		t.Fatalf("start of an ended conference: %d %+v", code, body)
	}
}

// The conference is restored onto another node: the new node gets the
// whole plan.
func TestRestoreSendsThePlanToTheNewNode(t *testing.T) {
	e := start(t, setup{nodes: 2})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true, audio: protocol.AudioUnmuted})
	u2 := e.connect(in, e164, who{id: 2, audio: protocol.AudioUnmuted})
	u3 := e.connect(in, e164, who{id: 3, audio: protocol.AudioUnmuted})
	e.rooms10and20(in, e164, host, []*user{u2}, []*user{u3})
	host.send(subscribe(e164, 1, sub(10, 3)))
	host.expect(protocol.AudioUserSubscribeInBreakoutNotify, status(0))
	st, _ := e.waitPlan(in, e164)
	// A ticket issued before the restore is for the same conference after it.
	tr := issue(t, in, e164, breakout.TicketRequest{UserID: 4})
	old := e.node(e164)
	for i, n := range e.st.Nodes {
		if n == old {
			e.st.KillNode(i)
		}
	}
	testkit.Eventually(t, wait, testkit.Cond("the conference restored on the other node", func() bool {
		c, err := e.st.Store.Conference(context.Background(), e164)
		return err == nil && c.State == protocol.StateRunning && c.Node != old.ID()
	}))
	moved, p := e.waitPlan(in, e164)
	if moved.Meta.Node == st.Meta.Node || moved.Meta.Node != e.node(e164).ID() {
		t.Fatalf("the plan goes to %q, the conference runs on %q (was %q)", moved.Meta.Node, e.node(e164).ID(), st.Meta.Node)
	}
	if p.Status != 1 || len(p.Rooms) != 3 || len(p.MixerSubs[1]) != 1 {
		t.Fatalf("the new node's plan: %+v", p)
	}
	// Operations go on against the new node.
	host.send(move(e164, 1, 2, 0, 20))
	host.expect(protocol.BMSSetUserBreakoutRoomNotify, status(0))
	e.waitPlan(in, e164)
	c, err := breakout.Dial(context.Background(), in.base, tr.URL)
	if err != nil {
		t.Fatalf("a ticket of the conference before its restore: %v", err)
	}
	defer c.CloseNow()
	entered(t, c, e164, 4)
}

// Breakout rooms need a running conference; a WebSocket needs a valid
// ticket for that conference.
func TestBreakoutNeedsTheConference(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	ctx := context.Background()
	for _, path := range []string{
		"/v1/conferences/" + e164 + "/breakout/ws",
		"/v1/conferences/" + e164 + "/breakout/ws?ticket=forged.ticket",
	} {
		if _, err := breakout.Dial(ctx, in.base, path); err == nil || !strings.Contains(err.Error(), protocol.ErrUnauthorized) {
			t.Fatalf("dial %s: %v, want UNAUTHORIZED", path, err)
		}
	}
	other := e.conference()
	tr, err := breakout.IssueTicket(ctx, http.DefaultClient, in.base, token, other, breakout.TicketRequest{UserID: 1})
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(tr.URL, other, e164, 1)
	if _, err := breakout.Dial(ctx, in.base, wrong); err == nil {
		t.Fatal("a ticket of another conference was accepted")
	}
	if _, err := breakout.IssueTicket(ctx, http.DefaultClient, in.base, token, "5199999", breakout.TicketRequest{UserID: 1}); err == nil || !strings.Contains(err.Error(), protocol.ErrConfNotFound) {
		t.Fatalf("ticket for no conference: %v", err)
	}
	if _, err := breakout.IssueTicket(ctx, http.DefaultClient, in.base, "wrong-token", e164, breakout.TicketRequest{UserID: 1}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("ticket with a wrong token: %v", err)
	}
}

// An instance changed the state and died before telling the node: a sweep
// sees the change never went out and sends the whole plan again.
func TestLostChangeIsRepaired(t *testing.T) {
	e := start(t, setup{opts: breakout.Options{SweepInterval: 50 * time.Millisecond, InstanceTTL: 5 * time.Second}})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true, audio: protocol.AudioUnmuted})
	u2 := e.connect(in, e164, who{id: 2, audio: protocol.AudioUnmuted})
	e.rooms10and20(in, e164, host, []*user{u2}, nil)
	st, _ := e.waitPlan(in, e164)

	// The dead instance's change: user 2 went to room 20.
	ctx := context.Background()
	rec, err := e.st.Store.Breakout(ctx, e164)
	if err != nil {
		t.Fatal(err)
	}
	var u map[string]any
	if err := json.Unmarshal(rec.Users["i2"], &u); err != nil {
		t.Fatal(err)
	}
	u["cur"] = 20
	data, _ := json.Marshal(u)
	if _, err := e.st.Store.ApplyBreakout(ctx, store.BreakoutChange{
		E164: e164, Version: rec.Version, SetUsers: map[string][]byte{"i2": data}, Now: time.Now().UnixMilli(),
	}); err != nil {
		t.Fatal(err)
	}
	after, p := e.waitPlan(in, e164)
	if after.Version != st.Version+1 || !slices.Equal(members(p.Rooms, 20), []uint32{2}) {
		t.Fatalf("after the repair: version %d (was %d), room 20 has %v", after.Version, st.Version, members(p.Rooms, 20))
	}
}

// The conference runs on another node and no notification said so: a
// sweep finds the store's node differs and sends the plan there.
func TestSweepFollowsAnUntoldMove(t *testing.T) {
	e := start(t, setup{nodes: 2, opts: breakout.Options{SweepInterval: 50 * time.Millisecond, InstanceTTL: 5 * time.Second}})
	in := e.insts[0]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true, audio: protocol.AudioUnmuted})
	u2 := e.connect(in, e164, who{id: 2, audio: protocol.AudioUnmuted})
	e.rooms10and20(in, e164, host, []*user{u2}, nil)
	st, _ := e.waitPlan(in, e164)
	other := e.st.Nodes[0]
	if other.ID() == st.Meta.Node {
		other = e.st.Nodes[1]
	}
	// The store says the conference runs elsewhere; nobody says it on the bus.
	if err := e.st.Store.Update(context.Background(), e164, "cmu", other.ID()); err != nil {
		t.Fatal(err)
	}
	// The sweep sends the plan to the node, then records that it did: the
	// node may follow it before the state names it.
	testkit.Eventually(t, wait, func() error {
		moved, _ := e.waitPlan(in, e164) // waits on the store's node
		if moved.Meta.Node != other.ID() {
			return fmt.Errorf("the plan goes to %q, not %q", moved.Meta.Node, other.ID())
		}
		return nil
	})
}

// A conference that never used breakout rooms gains no breakout state
// when it runs or moves (a restore onto another node): only a conference
// with breakout state has the plan sent to its new node.
func TestMoveOfAConferenceWithoutBreakoutWritesNothing(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	ctx := context.Background()
	in.svc.TestMoved(ctx, e164, "another-node")
	in.svc.TestMoved(ctx, e164, e.node(e164).ID())
	all, err := e.st.Store.BreakoutConferences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := e.st.Store.Client().Keys(ctx, "breakout*"+e164+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 0 || len(keys) != 0 {
		t.Fatalf("a conference without breakout rooms has breakout state after a move: conferences %v, keys %v", all, keys)
	}
}

// An instance that does not hold a conference hears of many moves at once
// (a restore): it asks the store's index which have breakout state, sends
// the plan of that one to its new node, and gives the others no state.
func TestManyMovesFollowOnlyTheConferenceWithBreakout(t *testing.T) {
	e := start(t, setup{nodes: 2, insts: 2})
	in, other := e.insts[0], e.insts[1]
	with := e.conference()
	host := e.connect(in, with, who{id: 1, host: true, audio: protocol.AudioUnmuted})
	u2 := e.connect(in, with, who{id: 2, audio: protocol.AudioUnmuted})
	e.rooms10and20(in, with, host, []*user{u2}, nil)
	st, _ := e.waitPlan(in, with)
	target := e.st.Nodes[0]
	if target.ID() == st.Meta.Node {
		target = e.st.Nodes[1]
	}
	moves := map[string]string{with: target.ID()}
	var without []string
	for range 3 {
		c := e.conference()
		without = append(without, c)
		moves[c] = target.ID()
	}
	ctx := context.Background()
	other.svc.TestMovedMany(ctx, moves)
	h, err := e.st.Store.BreakoutHead(ctx, with)
	if err != nil || h.Node != target.ID() {
		t.Fatalf("the conference with breakout rooms: head %+v, %v; want its plan going to %s", h, err, target.ID())
	}
	all, err := e.st.Store.BreakoutConferences(ctx)
	if err != nil || len(all) != 1 || all[0] != with {
		t.Fatalf("conferences with breakout state after the moves: %v, %v; want only %s", all, err, with)
	}
	for _, c := range without {
		if keys, err := e.st.Store.Client().Keys(ctx, "breakout*"+c+"*").Result(); err != nil || len(keys) != 0 {
			t.Fatalf("%s, without breakout rooms, has keys %v after the moves (%v)", c, keys, err)
		}
	}
}

// An instance that does not hold a conference hears that it ended: the
// end is queued, and the state goes once the store's index says the
// conference has some.
func TestEndHeardByAnInstanceNotHoldingItRemovesTheState(t *testing.T) {
	e := start(t, setup{insts: 2})
	in, other := e.insts[0], e.insts[1]
	e164 := e.conference()
	host := e.connect(in, e164, who{id: 1, host: true})
	u2 := e.connect(in, e164, who{id: 2})
	e.rooms10and20(in, e164, host, []*user{u2}, nil)
	e.waitPlan(in, e164)
	ctx := context.Background()
	if all, err := e.st.Store.BreakoutConferences(ctx); err != nil || len(all) != 1 {
		t.Fatalf("before the end: conferences with breakout state %v, %v", all, err)
	}
	other.svc.TestEnded(e164)
	testkit.Eventually(t, wait, testkit.Cond("the ended conference's breakout state removed", func() bool {
		all, err := e.st.Store.BreakoutConferences(ctx)
		keys, kerr := e.st.Store.Client().Keys(ctx, "breakout/"+e164+"*").Result()
		return err == nil && kerr == nil && len(all) == 0 && len(keys) == 0
	}))
}
