package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/convene/convene/internal/faultproxy"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

// runningOn makes n conferences running on node, numbered from first.
func runningOn(t *testing.T, s *store.Store, node string, first, n int) []string {
	t.Helper()
	ctx := context.Background()
	nums := make([]string, n)
	for i := range nums {
		nums[i] = fmt.Sprintf("66%05d", first+i)
		r := reservation("acme", nums[i])
		r.Conf.Name, r.Conf.Password = "conf "+nums[i], "pw"
		if _, err := s.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Commit(ctx, store.Placement{E164: nums[i], Node: node, IP: "10.0.0.1", PID: "1", Room: "r1", RealPlatform: "p1"}); err != nil {
			t.Fatal(err)
		}
	}
	return nums
}

func placements(nums []string, node string) []store.Placement {
	ps := make([]store.Placement, len(nums))
	for i, e := range nums {
		ps[i] = store.Placement{E164: e, Node: node, IP: "10.0.0.2", PID: "2", Room: "r2", RealPlatform: "p1"}
	}
	return ps
}

// A lost node's thousands of conferences move in bulk, each checked on its
// own: pend, begin on a new node, then commit most and fail the rest.
func TestBulkRestoreTransitions(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		publish(t, s, "acme", license.Limits{"8_720p": 3000})
		nums := runningOn(t, s, "n1", 0, 2500)
		other := runningOn(t, s, "n9", 2500, 1)[0]
		if err := s.Update(ctx, nums[7], "legacy", "1"); err != nil {
			t.Fatal(err)
		}
		if err := s.AddMonitor(ctx, nums[8], "10.0.0.9:5000", 1); err != nil {
			t.Fatal(err)
		}
		progress := 0
		moved, skipped, err := s.Pend(ctx, "n1", "node lost", append(append([]string{}, nums...), other, "6699999"), func(n int) { progress = n })
		if err != nil {
			t.Fatal(err)
		}
		if len(moved) != 2499 || progress < 1000 || !errors.Is(skipped[nums[7]], store.ErrLegacy) ||
			!errors.Is(skipped[other], store.ErrNodeMismatch) || !errors.Is(skipped["6699999"], store.ErrConfNotFound) {
			t.Fatalf("pend moved %d (progress %d), skipped %v", len(moved), progress, skipped)
		}
		if p, _ := s.Pending(ctx); len(p) != 2499 {
			t.Fatalf("%d pending", len(p))
		}

		among, err := s.PendingAmong(ctx, []string{nums[7], moved[0], "6699999", moved[1]})
		if err != nil || len(among) != 2 || !among[moved[0]] || !among[moved[1]] {
			t.Fatalf("pending among a legacy, two pending and an unknown number: %v, %v", among, err)
		}

		starts, err := s.BeginRestores(ctx, "n2", "r2", append([]string{nums[7]}, moved...))
		if err != nil || len(starts) != 2500 {
			t.Fatalf("begin: %d results, %v", len(starts), err)
		}
		if !errors.Is(starts[0].Err, store.ErrStateConflict) {
			t.Fatalf("begin of a running legacy conference: %v", starts[0].Err)
		}
		for i, st := range starts[1:] {
			c := st.Conf
			if st.Err != nil || c.E164 != moved[i] || st.Prev != "n1" || c.State != protocol.StateCreating || c.Node != "n2" || c.Room != "r2" ||
				c.Name != "conf "+moved[i] || c.Password != "pw" || c.Domain != "acme" || c.Platform != "p1" || c.Scale != 8 || c.Resolution != "720p" ||
				c.DurationMinutes != 60 || c.EndTime == 0 || len(c.Invited) != 1 || st.Monitored != (moved[i] == nums[8]) {
				t.Fatalf("begin %d = %+v", i, st)
			}
		}
		loads, _ := s.NodeLoads(ctx, []string{"n1", "n2"})
		if loads["n1"] != 1 || loads["n2"] != 2499 {
			t.Fatalf("loads during the restore %v", loads)
		}
		if p, _ := s.Pending(ctx); len(p) != 0 {
			t.Fatalf("%d still pending", len(p))
		}
		if stuck, _ := s.CreatingSince(ctx, time.Now().Add(time.Minute).UnixMilli()); len(stuck) != 2499 {
			t.Fatalf("creating index holds %d", len(stuck))
		}

		again, err := s.BeginRestores(ctx, "n3", "r2", moved[:3])
		if err != nil || !errors.Is(again[0].Err, store.ErrStateConflict) {
			t.Fatalf("second begin: %v, %v", again[0].Err, err)
		}

		failed, ok := moved[:500], moved[500:]
		errs, err := s.CommitRestores(ctx, append(placements(ok, "n2"), placements(failed[:1], "n9")...))
		if err != nil || len(errs) != len(ok)+1 || !errors.Is(errs[len(ok)], store.ErrNodeMismatch) {
			t.Fatalf("commit: %v, last %v", err, errs[len(errs)-1])
		}
		for i, e := range errs[:len(ok)] {
			if e != nil {
				t.Fatalf("commit %d: %v", i, e)
			}
		}
		errs, err = s.FailRestores(ctx, "n2", "NODE_TIMEOUT", append(append([]string{}, failed...), ok[0]))
		if err != nil || !errors.Is(errs[len(failed)], store.ErrStateConflict) {
			t.Fatalf("fail: %v, last %v", err, errs[len(errs)-1])
		}
		for _, e := range errs[:len(failed)] {
			if e != nil {
				t.Fatal(e)
			}
		}
		for _, e := range []string{ok[0], ok[len(ok)-1]} {
			if c := state(t, s, e); c.State != protocol.StateRunning || c.Node != "n2" || c.NodeIP != "10.0.0.2" || c.Room != "r2" {
				t.Fatalf("committed %+v", c)
			}
		}
		if c := state(t, s, failed[0]); c.State != protocol.StatePendingRestore || c.RestoreAttempts != 1 || c.Reason != "NODE_TIMEOUT" {
			t.Fatalf("failed %+v", c)
		}
		if p, _ := s.Pending(ctx); len(p) != len(failed) {
			t.Fatalf("%d pending after the failures, want %d", len(p), len(failed))
		}
		if stuck, _ := s.CreatingSince(ctx, time.Now().Add(time.Minute).UnixMilli()); len(stuck) != 0 {
			t.Fatalf("creating index holds %d after the outcome", len(stuck))
		}
		states, _ := s.DomainStates(ctx, "acme")
		if states[ok[0]] != protocol.StateRunning || states[failed[0]] != protocol.StatePendingRestore {
			t.Fatalf("domain list says %s and %s", states[ok[0]], states[failed[0]])
		}

		errs, err = s.AdoptMany(ctx, "n2", failed)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range errs {
			if e != nil {
				t.Fatal(e)
			}
		}
		loads, _ = s.NodeLoads(ctx, []string{"n1", "n2"})
		if loads["n1"] != 1 || loads["n2"] != 2499 {
			t.Fatalf("loads after the restore %v", loads)
		}
		u, _ := s.License(ctx, "acme")
		if u.InUse["8_720p"] != 2501 {
			t.Fatalf("the moves changed the licence count: %v", u.InUse)
		}
	})

}

// A bulk write whose reply was lost is sent again and answered as its
// first run: nothing applies twice, and the caller hears each outcome.
func TestBulkRestoreLostReplyAppliesOnce(t *testing.T) {
	ctx := context.Background()
	behindProxy(t, func(t *testing.T, s, direct *store.Store, p *faultproxy.Proxy) {
		publish(t, direct, "acme", license.Limits{"8_720p": 3000})
		nums := runningOn(t, direct, "n1", 0, 1200)
		lose := func(op func() error) {
			t.Helper()
			dropped := p.Hits(faultproxy.DropReply)
			p.Inject(faultproxy.Fault{Command: "EVALSHA", Action: faultproxy.DropReply})
			err := op()
			p.Clear()
			if p.Hits(faultproxy.DropReply) != dropped+1 {
				t.Fatal("no reply was dropped")
			}
			if err != nil {
				t.Fatalf("a bulk write whose reply was lost answered %v", err)
			}
		}
		lose(func() error {
			moved, _, err := s.Pend(ctx, "n1", "node lost", nums, nil)
			if err == nil && len(moved) != len(nums) {
				return fmt.Errorf("pend moved %d of %d", len(moved), len(nums))
			}
			return err
		})
		lose(func() error {
			starts, err := s.BeginRestores(ctx, "n2", "r2", nums)
			for _, st := range starts {
				if st.Err != nil || st.Prev != "n1" || st.Conf.Name != "conf "+st.E164() {
					return fmt.Errorf("begin of %s answered %+v", st.E164(), st)
				}
			}
			return err
		})
		lose(func() error {
			errs, err := s.CommitRestores(ctx, placements(nums, "n2"))
			return errors.Join(append(errs, err)...)
		})
		for _, e := range []string{nums[0], nums[1100]} {
			c, err := direct.Conference(ctx, e)
			if err != nil || c.State != protocol.StateRunning || c.Node != "n2" {
				t.Fatalf("%s after the lost replies: %+v, %v", e, c, err)
			}
		}
		loads, _ := direct.NodeLoads(ctx, []string{"n1", "n2"})
		u, _ := direct.License(ctx, "acme")
		if loads["n1"] != 0 || loads["n2"] != len(nums) || u.InUse["8_720p"] != len(nums) {
			t.Fatalf("loads %v, %d counted", loads, u.InUse["8_720p"])
		}
		if p, _ := direct.Pending(ctx); len(p) != 0 {
			t.Fatalf("%d pending", len(p))
		}
	})
}
