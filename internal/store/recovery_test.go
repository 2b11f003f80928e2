package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

func running(t *testing.T, s *store.Store, e164, node string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Reserve(ctx, reservation("acme", e164)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, store.Placement{E164: e164, Node: node, Room: "r1"}); err != nil {
		t.Fatal(err)
	}
}

func state(t *testing.T, s *store.Store, e164 string) protocol.Conference {
	t.Helper()
	c, err := s.Conference(context.Background(), e164)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRestoreTransitions(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		publish(t, s, "acme", license.Limits{"8_720p": 10})
		running(t, s, "701", "n1")
		running(t, s, "702", "n1")
		running(t, s, "703", "n2")
		if err := s.Update(ctx, "702", "legacy", "1"); err != nil {
			t.Fatal(err)
		}
		moved, skipped, err := s.Pend(ctx, "n1", "node lost", []string{"701", "702", "703", "799"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(moved) != 1 || moved[0] != "701" {
			t.Fatalf("moved %v", moved)
		}
		if !errors.Is(skipped["702"], store.ErrLegacy) || !errors.Is(skipped["703"], store.ErrNodeMismatch) || !errors.Is(skipped["799"], store.ErrConfNotFound) {
			t.Fatalf("skipped %v", skipped)
		}
		if c := state(t, s, "701"); c.State != protocol.StatePendingRestore || c.Reason != "node lost" {
			t.Fatalf("701 = %+v", c)
		}
		if p, _ := s.Pending(ctx); len(p) != 1 || p[0] != "701" {
			t.Fatalf("pending = %v", p)
		}

		c, prev, err := s.BeginRestore(ctx, "701", "n3", "r2")
		if err != nil || c.E164 != "701" || c.Name != "weekly" || c.State != protocol.StateCreating || c.Node != "n3" || prev != "n1" {
			t.Fatalf("BeginRestore = %+v, %q, %v", c, prev, err)
		}
		if _, _, err := s.BeginRestore(ctx, "701", "n4", "r2"); !errors.Is(err, store.ErrStateConflict) {
			t.Fatalf("second begin: %v", err)
		}
		loads, _ := s.NodeLoads(ctx, []string{"n1", "n3"})
		if loads["n1"] != 1 || loads["n3"] != 1 {
			t.Fatalf("loads during restore %v", loads)
		}
		if p, _ := s.Pending(ctx); len(p) != 0 {
			t.Fatalf("pending during restore = %v", p)
		}
		if stuck, _ := s.CreatingSince(ctx, time.Now().Add(time.Minute).UnixMilli()); len(stuck) != 1 || stuck[0] != "701" {
			t.Fatalf("creating index during a restore = %v", stuck)
		}

		if _, err := s.Commit(ctx, store.Placement{E164: "701", Node: "n9"}); !errors.Is(err, store.ErrNodeMismatch) {
			t.Fatalf("stale commit: %v", err)
		}

		if err := s.FailRestore(ctx, "701", "n3", "NODE_TIMEOUT"); err != nil {
			t.Fatal(err)
		}
		if c := state(t, s, "701"); c.State != protocol.StatePendingRestore || c.RestoreAttempts != 1 {
			t.Fatalf("after failure %+v", c)
		}
		if stuck, _ := s.CreatingSince(ctx, time.Now().Add(time.Minute).UnixMilli()); len(stuck) != 0 {
			t.Fatalf("creating index after a failed restore = %v", stuck)
		}

		if err := s.Adopt(ctx, "701", "n3"); err != nil {
			t.Fatal(err)
		}
		if c := state(t, s, "701"); c.State != protocol.StateRunning || c.Node != "n3" || c.RestoreAttempts != 0 {
			t.Fatalf("after adopt %+v (a running conference has no failed restores to count)", c)
		}
		if err := s.Adopt(ctx, "701", "n3"); !errors.Is(err, store.ErrStateConflict) {
			t.Fatalf("adopt of a running conference: %v", err)
		}

		if err := s.PendOne(ctx, "701", "n3", "room failed"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.BeginRestore(ctx, "701", "n4", "r3"); err != nil {
			t.Fatal(err)
		}
		if err := s.FailRestore(ctx, "701", "n4", "NODE_TIMEOUT"); err != nil {
			t.Fatal(err)
		}
		if c := state(t, s, "701"); c.RestoreAttempts != 1 {
			t.Fatalf("failed restores counted from the last time it ran: %+v", c)
		}
		if _, _, err := s.BeginRestore(ctx, "701", "n4", "r3"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Commit(ctx, store.Placement{E164: "701", Node: "n4", Room: "r3"}); err != nil {
			t.Fatal(err)
		}
		if c := state(t, s, "701"); c.State != protocol.StateRunning || c.Node != "n4" || c.Room != "r3" || c.RestoreAttempts != 0 {
			t.Fatalf("restored %+v", c)
		}
		u, _ := s.License(ctx, "acme")
		if u.InUse["8_720p"] != 3 {
			t.Fatalf("restores changed the licence count: %v", u.InUse)
		}
		if _, err := s.Release(ctx, "701", store.ReleaseCond{}); err != nil {
			t.Fatal(err)
		}
		assertEmpty(t, s, "acme", "701", "n4")
	})

}

func TestLease(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.AcquireLease(ctx, "p1", "a", time.Second); err != nil {
			t.Fatal(err)
		}
		if err := s.AcquireLease(ctx, "p1", "b", time.Second); !errors.Is(err, store.ErrLeaseHeld) {
			t.Fatalf("b took a's lease: %v", err)
		}
		if err := s.AcquireLease(ctx, "p1", "a", 50*time.Millisecond); err != nil {
			t.Fatalf("renew: %v", err)
		}
		testkit.Eventually(t, 5*time.Second, func() error {
			if s.AcquireLease(ctx, "p1", "b", time.Second) != nil {
				return errors.New("the lease never expired")
			}
			return nil
		})
		if err := s.ReleaseLease(ctx, "p1", "a"); err != nil {
			t.Fatal(err)
		}
		if err := s.AcquireLease(ctx, "p1", "a", time.Second); !errors.Is(err, store.ErrLeaseHeld) {
			t.Fatalf("a's stale release freed b's lease: %v", err)
		}
	})

}
