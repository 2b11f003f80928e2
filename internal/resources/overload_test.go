package resources_test

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// gate is a log sink that holds whoever logs one message until it opens:
// RMS's node handler slowed down by the sink, as a slow disk would.
type gate struct {
	msg  string
	held chan struct{} // closed when a record was first held
	open chan struct{} // closed to let every record through
	once sync.Once
}

func newGate(t *testing.T, msg string) *gate {
	g := &gate{msg: msg, held: make(chan struct{}), open: make(chan struct{})}
	t.Cleanup(g.release)
	return g
}

func (g *gate) release() {
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

func (g *gate) Enabled(context.Context, slog.Level) bool { return true }

func (g *gate) Handle(_ context.Context, r slog.Record) error {
	if r.Message == g.msg {
		g.once.Do(func() { close(g.held) })
		<-g.open
	}
	return nil
}

func (g *gate) WithAttrs([]slog.Attr) slog.Handler { return g }
func (g *gate) WithGroup(string) slog.Handler      { return g }

// hog keeps every processor busy (GOMAXPROCS × 2 spinning goroutines)
// until the returned stop is called.
func hog(t *testing.T) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) * 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
			}
		}()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}

// On a machine whose processors are all busy, RMS's node handler stops
// (held by its log sink) for many heartbeat windows while beats keep
// coming: the node that beats is never taken down, as its beats are
// waiting to be handled; the node that froze meanwhile is taken down once
// the handler catches up.
func TestBackloggedRMSTakesNobodyDown(t *testing.T) {
	g := newGate(t, "rms ignored a heartbeat")
	opts := fast
	opts.OverloadHold = time.Hour // only the backlog ends the hold here
	h := startLoggedHarness(t, opts, false, slog.New(g))
	stopHog := hog(t)

	healthy := h.keepBeating(mcu("healthy", "room-1", 0, 10))
	frozen := h.keepBeating(mcu("frozen", "room-1", 0, 10))
	h.waitNotices("healthy", 1)
	h.waitNotices("frozen", 1)

	// A heartbeat for another platform is logged, and the log holds the
	// handler: everything after it waits.
	bad := mcu("stranger", "room-1", 0, 10)
	bad.Platform = "plat-other"
	h.beat(bad)
	select {
	case <-g.held:
	case <-time.After(15 * time.Second):
		t.Fatal("the handler never logged the stranger's heartbeat")
	}
	frozen.halt()
	// Three windows' worth of beats wait behind the held one.
	window := int64(opts.MissedHeartbeats) * 3
	sent := healthy.sent.Load()
	testkit.Eventually(h.t, 15*time.Second, testkit.Cond("three windows of beats", func() bool { return healthy.sent.Load() >= sent+3*window }))
	for _, id := range []string{"healthy", "frozen"} {
		if got := h.noticesFor(id); len(got) != 1 {
			t.Fatalf("%s while its beats wait to be handled: %+v", id, transitions(got))
		}
	}

	stopHog()
	g.release()
	if down := h.waitNotices("frozen", 2)[1]; down.State != protocol.NodeDown {
		t.Fatalf("frozen node: %+v, want down", down)
	}
	h.barrier()
	if got := h.noticesFor("healthy"); len(got) != 1 {
		t.Fatalf("healthy node: %+v, want only its registration", transitions(got))
	}
}
