package resources

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// While RMS's process is starved (here: a lag source in its guard says
// every liveness check ran a second late), neither a node whose beats
// stopped reaching it nor one that froze is taken down, over many
// heartbeat windows; once the lag ends, the node that froze is taken down
// and the node that beats again stays up.
func TestStarvedRMSTakesNobodyDown(t *testing.T) {
	emb := testkit.BusServer(t, bus.EmbeddedOptions{NoListen: true})
	conn := func(name string) *bus.Bus {
		b := testkit.Dial(t, bus.Options{Embedded: emb, Name: name})
		return b
	}
	interval := 50 * time.Millisecond
	s, err := New(Options{
		Platform: "plat-a", Rooms: []Room{{Moid: "room-1"}},
		HeartbeatInterval: interval, MissedHeartbeats: 16, OverloadHold: time.Hour,
	}, conn("rms"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var (
		starved atomic.Bool
		turns   atomic.Int64
	)
	s.guard.extra = func() time.Duration {
		turns.Add(1)
		if starved.Load() {
			return time.Second
		}
		return 0
	}
	var (
		mu      sync.Mutex
		notices []string
	)
	s.OnNodeState(func(n protocol.NodeStateNtf) {
		mu.Lock()
		notices = append(notices, n.Node+" "+n.State)
		mu.Unlock()
	})
	all := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), notices...)
	}
	seen := func(want string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range notices {
			if n == want {
				return true
			}
		}
		return false
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })

	nodes := conn("nodes")
	var paused [2]atomic.Bool // healthy, frozen
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, id := range []string{"healthy", "frozen"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(interval / 3)
			defer tick.Stop()
			hb := protocol.HeartbeatNtf{Type: protocol.MCUHeartbeatNtf, Node: id, IP: "ip-" + id, PID: "100",
				Room: "room-1", Platform: "plat-a", Capacity: 10}
			for {
				if !paused[i].Load() {
					_ = nodes.Publish(protocol.SubjectRMSNodes("plat-a"), hb)
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	testkit.Eventually(t, 15*time.Second, testkit.Cond("both nodes up", func() bool { return seen("healthy up") && seen("frozen up") }))

	// Starved: the next turn forgives, then the beats stop reaching RMS.
	starved.Store(true)
	mark := turns.Load()
	testkit.Eventually(t, 15*time.Second, testkit.Cond("a starved turn", func() bool { return turns.Load() > mark+1 }))
	paused[0].Store(true)
	paused[1].Store(true)
	// Three windows (16 intervals each) of turns, a quarter interval apart.
	mark = turns.Load()
	testkit.Eventually(t, 15*time.Second, testkit.Cond("three windows of turns", func() bool { return turns.Load() >= mark+3*16*4 }))
	if seen("healthy down") || seen("frozen down") {
		t.Fatalf("a node went down while RMS was starved: %v", all())
	}

	// The healthy node's beats reach RMS again, then the lag ends.
	resumed := time.Now()
	paused[0].Store(false)
	testkit.Eventually(t, 15*time.Second, testkit.Cond("a beat after the starved spell", func() bool {
		for _, n := range s.Nodes() {
			if n.Node == "healthy" && n.LastBeatMs >= resumed.UnixMilli() {
				return true
			}
		}
		return false
	}))
	starved.Store(false)
	testkit.Eventually(t, 15*time.Second, testkit.Cond("the frozen node down", func() bool { return seen("frozen down") }))
	if seen("healthy down") {
		t.Fatalf("the healthy node went down: %v", all())
	}
}
