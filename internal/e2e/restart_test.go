package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

func TestSchedulerRestartMovesNothing(t *testing.T) {
	e := start(t, setup{nodes: 3})
	nums := e.createN(20)
	created, before := e.conferences(), e.placement()
	e.st.Scheduler.Kill()
	sc, err := e.st.AddScheduler(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the new scheduler active", sc.Ready))
	e.settled("after the scheduler restarted")
	e.sameConferences(created)
	if after := e.placement(); !equalMaps(before, after) {
		t.Fatalf("a restart moved conferences:\nbefore %v\nafter  %v", before, after)
	}
	for _, n := range e.st.Nodes {
		for _, r := range n.Received() {
			if r.Type == protocol.MAUMCURestoreConfReq || r.Type == protocol.MAUMCUReleaseConfCmd {
				t.Fatalf("node %s was sent %s %s after a restart", n.ID(), r.Type, r.E164)
			}
		}
	}
	// The new scheduler controls them.
	if _, err := e.client.DelayConference(context.Background(), nums[3], 10); err != nil {
		t.Fatal(err)
	}
	if !sc.Controlled(nums[3]) {
		t.Fatal("the new scheduler holds no control subscription")
	}
}

func TestStandbyTakesOverWithoutMovingAnything(t *testing.T) {
	e := start(t, setup{nodes: 2, schedulers: 2})
	active, standby := e.st.Schedulers[0], e.st.Schedulers[1]
	if !active.Ready() || standby.Ready() {
		t.Fatalf("ready: first %v, second %v; want one active, one standing by", active.Ready(), standby.Ready())
	}
	e.createN(10)
	created, before := e.conferences(), e.placement()
	active.Kill()
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the standby to take over", standby.Ready))
	// Creates work again through the new active scheduler; those refused
	// on the way leave nothing behind.
	testkit.Eventually(t, testkit.Wait, testkit.Cond("a create through the new active scheduler", func() bool {
		c, err := e.create("after takeover")
		if err == nil {
			created.add(c)
		}
		return err == nil
	}))
	e.settled("after the takeover")
	e.sameConferences(created)
	after := e.placement()
	for num, node := range before {
		if after[num] != node {
			t.Fatalf("%s moved from %s to %s in the takeover", num, node, after[num])
		}
	}
}

func TestSchedulerKilledMidRestore(t *testing.T) {
	e := start(t, setup{nodes: 3})
	e.createN(30)
	created := e.conferences()
	slow := e.st.Nodes[1]
	slow.SetFault(medianode.Fault{AckDelay: 300 * time.Millisecond, Only: []string{protocol.MAUMCURestoreConfReq}})
	e.st.KillNode(0)
	testkit.Eventually(t, testkit.Wait, testkit.Cond("restores under way", func() bool {
		for _, r := range slow.Received() {
			if r.Type == protocol.MAUMCURestoreConfReq {
				return true
			}
		}
		return false
	}))
	e.st.Scheduler.Kill()
	slow.SetFault(medianode.Fault{})
	if _, err := e.st.AddScheduler(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.settled("after the scheduler died mid-restore and another took over")
	e.sameConferences(created)
}

func TestNodeKilledMidCreate(t *testing.T) {
	e := start(t, setup{nodes: 2})
	slow := e.st.Nodes[0]
	slow.SetFault(medianode.Fault{AckDelay: 400 * time.Millisecond})
	var (
		wg      sync.WaitGroup
		failed  atomic.Int32
		mu      sync.Mutex
		created = confSet{}
	)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := e.create(fmt.Sprintf("mid %d", i))
			if err != nil {
				failed.Add(1)
				return
			}
			mu.Lock()
			created.add(c)
			mu.Unlock()
		}()
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("a create reaching the slow node", func() bool {
		for _, r := range slow.Received() {
			if r.Type == protocol.MAUMCUCreateConfReq {
				return true
			}
		}
		return false
	}))
	e.st.KillNode(0)
	wg.Wait()
	e.settled("after a node died with creates in flight")
	// Each create acknowledged runs; each refused left nothing.
	if len(created)+int(failed.Load()) != 6 {
		t.Fatalf("%d creates acknowledged and %d refused of 6", len(created), failed.Load())
	}
	e.sameConferences(created)
}

func TestStoreRestartUnderLoad(t *testing.T) {
	e := start(t, setup{nodes: 2, aof: true})
	e.createN(10)
	created := e.conferences()
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		ok, refused atomic.Int32
		stop        = make(chan struct{})
		stopOnce    sync.Once
	)
	// However the test ends, the load stops before the platform does.
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	t.Cleanup(halt)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := e.create(fmt.Sprintf("load %d-%d", w, i))
				if err != nil {
					refused.Add(1)
					continue
				}
				ok.Add(1)
				mu.Lock()
				created.add(c)
				mu.Unlock()
			}
		}()
	}
	testkit.Eventually(t, testkit.Wait, testkit.Cond("load under way", func() bool { return ok.Load() > 20 }))
	e.redis.Restart()
	before := ok.Load()
	testkit.Eventually(t, testkit.Wait, testkit.Cond("creates succeeding after the restart", func() bool { return ok.Load() > before+20 }))
	halt()
	e.settled("after redis-server restarted under load")
	// Every create acknowledged runs, once; every refused one left
	// nothing (a create answered with an error that still ran would be
	// one more conference than those created).
	e.sameConferences(created)
	t.Logf("%d creates succeeded, %d refused around the restart", ok.Load(), refused.Load())
}
