package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
)

// WaitUndoubled waits until no conference that the given nodes host is
// hosted by another running simulated node too, and answers when it saw
// that first.
func WaitUndoubled(ctx context.Context, st *stack.Stack, nodes []int, limit time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(limit)
	for {
		now := time.Now()
		if Doubled(st, nodes) == 0 {
			return now, true
		}
		if now.After(deadline) {
			return time.Time{}, false
		}
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Doubled counts the conferences the given nodes host that another
// running node hosts too.
func Doubled(st *stack.Stack, nodes []int) int {
	mine := map[string]int{} // e164 -> the last of nodes that hosts it
	for _, i := range nodes {
		for _, e := range st.Nodes[i].Numbers() {
			mine[e] = i
		}
	}
	n := 0
	for j, other := range st.Nodes {
		if len(mine) == 0 {
			break
		}
		if !other.Running() {
			continue
		}
		for _, e := range other.Numbers() {
			if i, ok := mine[e]; ok && i != j {
				n++
				delete(mine, e)
			}
		}
	}
	return n
}

// AuditSettled waits for the platform to settle with n conferences
// running and audits it.
func AuditSettled(ctx context.Context, out io.Writer, st *stack.Stack, n int) (bool, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := st.Audit(ctx)
		if err != nil {
			return false, err
		}
		settled := r.OK() && r.Creating == 0 && r.Pending == 0 && r.Running == n
		if settled || time.Now().After(deadline) {
			fmt.Fprintf(out, "  audit            %s\n", r)
			return settled, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Watcher hears RMS's node notices and the scheduler's running notices.
type Watcher struct {
	subs    []*bus.Subscription
	Start   time.Time
	mu      sync.Mutex
	down    map[string]time.Time
	running map[string]time.Duration
	wake    chan struct{}
}

// Watch starts hearing the platform st.
func Watch(st *stack.Stack) (*Watcher, error) {
	w := &Watcher{Start: time.Now(), down: map[string]time.Time{}, running: map[string]time.Duration{}, wake: make(chan struct{}, 1)}
	poke := func() {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	s1, err := st.Bus.Subscribe(protocol.SubjectRMSNotify(st.Config.Platform), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var ntf protocol.NodeStateNtf
		if m.Decode(&ntf) == nil && ntf.State == protocol.NodeDown {
			w.mu.Lock()
			if _, ok := w.down[ntf.Node]; !ok {
				w.down[ntf.Node] = time.Now()
			}
			w.mu.Unlock()
			poke()
		}
	}))
	if err != nil {
		return nil, err
	}
	s2, err := st.Bus.Subscribe(protocol.SubjectCMNotifications, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		if m.Type != protocol.MAUConfStateNtf {
			return
		}
		var ntf protocol.ConfStateNtf
		if m.Decode(&ntf) == nil && ntf.State == protocol.StateRunning {
			now := time.Now()
			w.mu.Lock()
			if _, ok := w.running[ntf.E164]; !ok {
				w.running[ntf.E164] = now.Sub(w.Start)
			}
			w.mu.Unlock()
			poke()
		}
	}))
	if err != nil {
		_ = s1.Unsubscribe()
		return nil, err
	}
	w.subs = []*bus.Subscription{s1, s2}
	if err := st.Bus.Flush(context.Background()); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// Close stops hearing.
func (w *Watcher) Close() {
	for _, s := range w.subs {
		_ = s.Unsubscribe()
	}
}

// WaitDown waits until RMS declares node down and answers when it did.
func (w *Watcher) WaitDown(ctx context.Context, node string, limit time.Duration) (time.Time, error) {
	deadline := time.After(limit)
	for {
		w.mu.Lock()
		t, ok := w.down[node]
		w.mu.Unlock()
		if ok {
			return t, nil
		}
		select {
		case <-w.wake:
		case <-deadline:
			return time.Time{}, fmt.Errorf("node %s was not declared down within %s", node, limit)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// WaitRunning waits for n running notices; it answers when the last came
// and each one's time since the watch began (callers rebase it).
func (w *Watcher) WaitRunning(ctx context.Context, n int, limit time.Duration) (time.Time, []time.Duration, error) {
	deadline := time.After(limit)
	for {
		w.mu.Lock()
		got := len(w.running)
		w.mu.Unlock()
		if got >= n {
			w.mu.Lock()
			defer w.mu.Unlock()
			lat := make([]time.Duration, 0, len(w.running))
			var last time.Duration
			for _, d := range w.running {
				lat = append(lat, d)
				last = max(last, d)
			}
			return w.Start.Add(last), lat, nil
		}
		select {
		case <-w.wake:
		case <-deadline:
			return time.Time{}, nil, fmt.Errorf("only %d of %d conferences running again after %s", got, n, limit)
		case <-ctx.Done():
			return time.Time{}, nil, ctx.Err()
		}
	}
}

// WaitRestored waits until each of confs was announced running since the
// watch began, and answers when the last of them was. Other conferences'
// notices (a node taken down meanwhile) do not count. Between looks it
// leaves the platform alone four times as long as a look took.
func (w *Watcher) WaitRestored(ctx context.Context, confs []string, limit time.Duration) (time.Time, error) {
	deadline := time.After(limit)
	left := slices.Clone(confs)
	var last time.Duration
	for {
		t := time.Now()
		w.mu.Lock()
		kept := left[:0]
		for _, e := range left {
			if d, ok := w.running[e]; ok {
				last = max(last, d)
			} else {
				kept = append(kept, e)
			}
		}
		w.mu.Unlock()
		left = kept
		if len(left) == 0 {
			return w.Start.Add(last), nil
		}
		took := time.Since(t)
		select {
		case <-w.wake:
		case <-deadline:
			return time.Time{}, fmt.Errorf("%d of %d conferences not running again after %s", len(left), len(confs), limit)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
		if took > time.Millisecond {
			select {
			case <-time.After(4 * took):
			case <-ctx.Done():
				return time.Time{}, ctx.Err()
			}
		}
	}
}
