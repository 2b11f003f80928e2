package e2e

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/scheduler"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/testkit"
)

const hdLeaseKey = "platform/p1/scheduler-lease"

// lease reads the platform's scheduler lease: its holder and when it runs
// out (the store's clock, Unix ms).
func (e *hdEnv) lease() (holder string, until int64) {
	e.t.Helper()
	v, err := e.st.Store.Client().HMGet(context.Background(), hdLeaseKey, "holder", "until").Result()
	if err != nil {
		e.t.Fatal(err)
	}
	holder, _ = v[0].(string)
	u, _ := v[1].(string)
	until, _ = strconv.ParseInt(u, 10, 64)
	return holder, until
}

// active lists the instances of the stacks that act as the platform's
// scheduler now.
func active(stacks ...*stack.Stack) []*scheduler.Scheduler {
	var out []*scheduler.Scheduler
	for _, st := range stacks {
		for _, sc := range st.Schedulers {
			if sc.Ready() {
				out = append(out, sc)
			}
		}
	}
	return out
}

// watchOneActive polls the stacks until the lease was renewed renewals
// times, failing the test whenever other than one instance acts, or the
// one acting is not the lease's holder.
func watchOneActive(t *testing.T, e *hdEnv, renewals int, stacks ...*stack.Stack) {
	t.Helper()
	_, last := e.lease()
	seen := 0
	deadline := time.Now().Add(30 * time.Second)
	for seen < renewals {
		if time.Now().After(deadline) {
			t.Fatalf("the lease was renewed %d times in 30s, want %d", seen, renewals)
		}
		before, _ := e.lease()
		act := active(stacks...)
		after, until := e.lease()
		if len(act) != 1 {
			ids := make([]string, len(act))
			for i, sc := range act {
				ids[i] = sc.ID()
			}
			t.Fatalf("%d scheduler instances act at once %v; the lease names %q", len(act), ids, after)
		}
		if before == after && act[0].ID() != after {
			t.Fatalf("instance %s acts while the lease names %s", act[0].ID(), after)
		}
		if until != last {
			seen++
			last = until
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Two processes (here two stacks, each with its own bus) on one store:
// exactly one scheduler acts, through many renewals of the lease, and the
// other takes over when the first stops.
func TestTwoStacksOnOneStoreHaveOneActiveScheduler(t *testing.T) {
	r := redistest.Start(t, redistest.Options{})
	a := hdStart(t, hdOptions{redis: r})
	b := hdStart(t, hdOptions{redis: r})
	if a.st.Scheduler.ID() == b.st.Scheduler.ID() {
		t.Fatalf("two processes named their schedulers alike: %s", a.st.Scheduler.ID())
	}
	watchOneActive(t, a, 20, a.st, b.st)
	first := active(a.st, b.st)[0]
	first.Kill()
	testkit.Eventually(t, 20*time.Second, testkit.Cond("the other process's scheduler to take over", func() bool {
		act := active(a.st, b.st)
		return len(act) == 1 && act[0] != first
	}))
	watchOneActive(t, a, 10, a.st, b.st)
}

// A scheduler that lost its lease (another instance took it, as after a
// pause longer than the lease) stops acting: it stands down, drops every
// control subscription, and the conferences created and restored around
// the change are exactly those asked for.
func TestSchedulerThatLostItsLeaseStopsActing(t *testing.T) {
	e := hdStart(t, hdOptions{nodes: 3, schedulers: 2})
	old, next := e.st.Schedulers[0], e.st.Schedulers[1]
	if !old.Ready() || next.Ready() {
		t.Fatalf("ready: first %v, second %v", old.Ready(), next.Ready())
	}
	want := e.createAll(12)
	for num := range want {
		if !old.Controlled(num) {
			t.Fatalf("the active scheduler does not control %s", num)
		}
	}
	// The lease passes to the other instance behind the active one's back,
	// as when it was paused past its lease and the standby took it.
	ctx := context.Background()
	if err := e.st.Store.ReleaseLease(ctx, "p1", old.ID()); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Store.AcquireLease(ctx, "p1", next.ID(), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	// Meanwhile a node dies and creates go on.
	e.st.KillNode(0)
	for i := range 6 {
		c, err := e.create(fmt.Sprintf("around the change %d", i))
		if err != nil {
			// The instance standing down may refuse it; only a conference
			// whose create succeeded may run.
			t.Logf("create around the change: %s", apiCodeOf(err))
			continue
		}
		want.add(c)
	}
	testkit.Eventually(t, 20*time.Second, testkit.Cond("the instance that lost its lease to stand down", func() bool { return !old.Ready() && next.Ready() }))
	watchOneActive(t, e, 10, e.st)
	for num := range want {
		if old.Controlled(num) {
			t.Fatalf("the instance that lost its lease still controls %s", num)
		}
	}
	e.exactly("after the lease changed hands", want, e.st.Nodes[0].ID())
	testkit.Eventually(t, 20*time.Second, testkit.Cond("the new active instance to control every conference", func() bool {
		for num := range want {
			if !next.Controlled(num) {
				return false
			}
		}
		return true
	}))
	// The new instance acts on what happens now.
	victim := e.st.Nodes[1]
	e.st.KillNode(1)
	e.exactly("after a node died under the new instance", want, e.st.Nodes[0].ID(), victim.ID())
}
