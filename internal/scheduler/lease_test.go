package scheduler

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

func leaseTestDeps(t *testing.T) Deps {
	t.Helper()
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = 10
	}
	cfg := &config.Config{
		Platforms: []config.Platform{{Moid: "p1", NumberSegment: "51", Rooms: []config.Room{{Moid: "r1", Type: "main"}}}},
		Domains:   []config.Domain{{Moid: "acme", Platform: "p1", License: limits}},
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	emb := testkit.BusServer(t, bus.EmbeddedOptions{NoListen: true})
	b := testkit.Dial(t, bus.Options{Embedded: emb, Name: "lease-test"})
	st := testkit.Store(t, testkit.RedisServer)
	return Deps{Bus: b, Store: st, Config: cfg}
}

// A scheduler paused past its lease (a stopped process: its election stops
// with everything else) while a standby takes the lease must not act as
// the active one when it runs again before its next renewal: two would
// act at once. It reports itself not ready and refuses to create, restore
// or move anything.
func TestSchedulerPausedPastItsLeaseActsOnNothing(t *testing.T) {
	deps := leaseTestDeps(t)
	ctx := context.Background()
	opts := Options{
		Platform: "p1", LeaseTTL: 600 * time.Millisecond, LeaseRenew: 50 * time.Millisecond,
		NodeTimeout: 300 * time.Millisecond, RMSTimeout: 300 * time.Millisecond,
		// No node ever reports: a long grace keeps the new active one from
		// settling the conference below while the test looks.
		StartGrace: time.Minute,
	}
	paused, err := New(opts, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := paused.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(paused.Kill)
	if !paused.Ready() {
		t.Fatal("the first scheduler is not active")
	}
	// A conference running on node n1.
	class, _ := license.ClassOf(8, "720p")
	st := deps.Store
	num, err := st.Reserve(ctx, store.Reservation{
		Conf:      protocol.Conference{E164: "51000", Name: "kept", Domain: "acme", Platform: "p1", RealPlatform: "p1", Scale: 8, Resolution: "720p", DurationMinutes: 60, EndTime: time.Now().Add(time.Hour).UnixMilli()},
		Class:     class,
		Numbering: store.Numbering{Platform: "p1", Segment: "51", Digits: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Commit(ctx, store.Placement{E164: num, Node: "n1", IP: "10.0.0.1", PID: "1", Room: "r1", RealPlatform: "p1"}); err != nil {
		t.Fatal(err)
	}

	standby, err := New(opts, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := standby.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(standby.Kill)
	if standby.Ready() {
		t.Fatal("two schedulers active at start")
	}

	paused.lease.stop() // the pause: it renews nothing more
	testkit.Eventually(t, 10*time.Second, func() error {
		if !standby.Ready() {
			return errors.New("the standby did not take the lease of the paused scheduler")
		}
		return nil
	})
	// The paused one runs again, before it could renew.
	if paused.Ready() {
		t.Fatal("the paused scheduler reports itself active next to the one holding the lease")
	}
	_, err = paused.Create(ctx, protocol.CreateConfReq{Name: "split", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 30})
	if Code(err) != protocol.ErrSchedulerDown {
		t.Fatalf("the paused scheduler's create: %v; want %s", err, protocol.ErrSchedulerDown)
	}
	if n := paused.nodeLost(ctx, "n1", "node lost, as the paused scheduler heard it"); n != 0 {
		t.Fatalf("the paused scheduler moved %d conferences", n)
	}
	c, err := st.Conference(ctx, num)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != protocol.StateRunning || c.Node != "n1" {
		t.Fatalf("conference %s is %s on %s; want running on n1, untouched", num, c.State, c.Node)
	}
	u, err := st.License(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.InUse[class.String()]; got != 1 {
		t.Fatalf("licence counts %d conferences, 1 runs", got)
	}
}

// fakeLease is an election whose lease is held or not as a test says.
type fakeLease struct{ isHeld bool }

func (f *fakeLease) join(context.Context) error    { return nil }
func (f *fakeLease) held() bool                    { return f.isHeld }
func (f *fakeLease) stop()                         {}
func (f *fakeLease) release(context.Context) error { return nil }

// An instance whose lease ran out by its own clock touches neither the
// bus nor the store (both unusable here: a touch panics), whatever it is
// asked.
func TestNothingActsWithoutTheLease(t *testing.T) {
	cfg := &config.Config{
		Platforms: []config.Platform{{Moid: "p1", NumberSegment: "51", Rooms: []config.Room{{Moid: "r1", Type: "main"}}}},
		Domains:   []config.Domain{{Moid: "acme", Platform: "p1"}},
	}
	cfg.Defaults()
	s, err := New(Options{Platform: "p1"}, Deps{Bus: &bus.Bus{}, Store: &store.Store{}, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	s.lease = &fakeLease{isHeld: false}
	term := &term{ctx: context.Background(), graceDone: make(chan struct{}), expect: map[string]bool{}}
	close(term.graceDone)
	s.cur.Store(term)
	s.restore = newRestorer(s.opts)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		do   func() error
	}{
		{"create", func() error {
			_, err := s.Create(ctx, protocol.CreateConfReq{Name: "c", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 30})
			if Code(err) != protocol.ErrSchedulerDown {
				return fmt.Errorf("create: %v; want %s", err, protocol.ErrSchedulerDown)
			}
			return nil
		}},
		{"a node lost", func() error {
			if n := s.nodeLost(ctx, "n1", "lost"); n != 0 {
				return fmt.Errorf("moved %d conferences", n)
			}
			return nil
		}},
		{"a node's conference list", func() error {
			s.handleConfList(ctx, listMsg(t, wholeList("n1", "1", 1, map[string]int64{"51001": 1})))
			s.mu.Lock()
			defer s.mu.Unlock()
			if _, took := s.lists["n1"]; took {
				return errors.New("the list was taken")
			}
			return nil
		}},
		{"a restore pass", func() error {
			s.restorePass(term, s.restore)
			if n := s.Activity().RestorePasses; n != 0 {
				return fmt.Errorf("%d restore passes ran", n)
			}
			return nil
		}},
		{"readiness", func() error {
			s.ready.Store(true)
			defer s.ready.Store(false)
			if s.Ready() {
				return errors.New("ready without the lease")
			}
			return nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
