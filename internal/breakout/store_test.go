package breakout_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

// The store keeps breakout state versioned: a change computed from an old
// version fails, a change may require the conference, the countdown index
// follows the state, and the same scripts run on the embedded store and on
// redis-server.
func TestStoreBreakoutState(t *testing.T) {
	for _, kind := range testkit.Backends {
		t.Run(string(kind), func(t *testing.T) {
			ctx := context.Background()
			st := testkit.Store(t, kind)

			if rec, err := st.Breakout(ctx, "5100001"); err != nil || rec.Version != 0 || len(rec.Users) != 0 {
				t.Fatalf("no state yet: %+v %v", rec, err)
			}
			users := map[string][]byte{}
			for i := range 1000 {
				users[fmt.Sprintf("i%d", i+1)] = []byte(fmt.Sprintf(`{"uid":%d}`, i+1))
			}
			deadline := time.Now().Add(time.Minute).UnixMilli()
			v, err := st.ApplyBreakout(ctx, store.BreakoutChange{E164: "5100001", Meta: []byte(`{"rooms":[]}`), Node: "sim-1", SetUsers: users, Countdown: deadline, Now: 1})
			if err != nil || v != 1 {
				t.Fatalf("first change: %d %v", v, err)
			}
			if _, err := st.ApplyBreakout(ctx, store.BreakoutChange{E164: "5100001", Version: 0, DelUsers: []string{"i1"}}); !errors.Is(err, store.ErrBreakoutConflict) {
				t.Fatalf("a change of an old version: %v", err)
			}
			if _, err := st.ApplyBreakout(ctx, store.BreakoutChange{E164: "5100001", Version: 1, Conf: "exists"}); !errors.Is(err, store.ErrConfNotFound) {
				t.Fatalf("a change that needs the conference: %v", err)
			}
			if v, err = st.ApplyBreakout(ctx, store.BreakoutChange{E164: "5100001", Version: 1, DelUsers: []string{"i1"}, Countdown: -1, Now: 2}); err != nil || v != 2 {
				t.Fatalf("second change: %d %v", v, err)
			}
			rec, err := st.Breakout(ctx, "5100001")
			if err != nil || rec.Version != 2 || len(rec.Users) != 999 || string(rec.Users["i7"]) != `{"uid":7}` || string(rec.Meta) != `{"rooms":[]}` {
				t.Fatalf("state: version %d, %d users, meta %s, %v", rec.Version, len(rec.Users), rec.Meta, err)
			}
			if due, err := st.DueBreakoutCountdowns(ctx, deadline+1); err != nil || len(due) != 0 {
				t.Fatalf("a cleared countdown is due: %v %v", due, err)
			}
			if err := st.MarkBreakoutSent(ctx, "5100001", 2); err != nil {
				t.Fatal(err)
			}
			if err := st.MarkBreakoutSent(ctx, "5100001", 1); err != nil {
				t.Fatal(err)
			}
			if h, err := st.BreakoutHead(ctx, "5100001"); err != nil || h.Version != 2 || h.Sent != 2 || h.Updated != 2 || h.Node != "sim-1" {
				t.Fatalf("head: %+v %v", h, err)
			}
			if all, err := st.BreakoutConferences(ctx); err != nil || !slices.Equal(all, []string{"5100001"}) {
				t.Fatalf("index: %v %v", all, err)
			}
			if err := st.DeleteBreakout(ctx, "5100001"); err != nil {
				t.Fatal(err)
			}
			if rec, err := st.Breakout(ctx, "5100001"); err != nil || rec.Version != 0 || len(rec.Users) != 0 {
				t.Fatalf("after delete: %+v %v", rec, err)
			}
			if all, err := st.BreakoutConferences(ctx); err != nil || len(all) != 0 {
				t.Fatalf("index after delete: %v %v", all, err)
			}
			s1, err := st.BreakoutSecret(ctx)
			if err != nil || len(s1) != 32 {
				t.Fatalf("secret: %v", err)
			}
			if s2, _ := st.BreakoutSecret(ctx); string(s2) != string(s1) {
				t.Fatal("the secret changed")
			}
		})
	}
}

// A ticket's redemption is first come, first served, and safe to repeat:
// the redeemer that ran it again (its reply was lost) still holds the
// ticket; anyone else finds it taken. The records go once past their
// time, by the sweep's call, on both servers.
func TestStoreTicketRedemption(t *testing.T) {
	for _, kind := range testkit.Backends {
		t.Run(string(kind), func(t *testing.T) {
			ctx := context.Background()
			st := testkit.Store(t, kind)
			const until = 1_800_000_000_000
			for _, try := range []struct{ id, redeemer, holder string }{
				{"t1", "bms-1/a", "bms-1/a"},
				{"t1", "bms-1/a", "bms-1/a"}, // the same redemption again
				{"t1", "bms-2/b", "bms-1/a"},
				{"t2", "bms-2/b", "bms-2/b"},
			} {
				if got, err := st.RedeemTicket(ctx, try.id, try.redeemer, until); err != nil || got != try.holder {
					t.Fatalf("%s redeems %s: held by %q (%v), want %q", try.redeemer, try.id, got, err, try.holder)
				}
			}
			if _, err := st.RedeemTicket(ctx, "t3", "bms-2/b", until+60_000); err != nil {
				t.Fatal(err)
			}
			if n, err := st.ForgetTickets(ctx, until, 100); err != nil || n != 0 {
				t.Fatalf("forgot %d records kept until the time itself (%v)", n, err)
			}
			if n, err := st.ForgetTickets(ctx, until+1, 100); err != nil || n != 2 {
				t.Fatalf("forgot %d records past their time, want 2 (%v)", n, err)
			}
			if n, err := st.ForgetTickets(ctx, until+1, 100); err != nil || n != 0 {
				t.Fatalf("forgot %d records again (%v)", n, err)
			}
			if got, _ := st.RedeemTicket(ctx, "t3", "bms-1/a", until+60_000); got != "bms-2/b" {
				t.Fatalf("a record still in its time is held by %q", got)
			}
			keys := st.Client()
			if n, err := keys.HLen(ctx, "breakouts/tickets").Result(); err != nil || n != 1 {
				t.Fatalf("%d redemption records left, want 1 (%v)", n, err)
			}
			if n, err := keys.ZCard(ctx, "breakouts/tickets/until").Result(); err != nil || n != 1 {
				t.Fatalf("%d redemption times left, want 1 (%v)", n, err)
			}
		})
	}
}
