package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/stack"
)

// Doubled counts, among the conferences the nodes given host, those another
// running node hosts too, each once however many nodes host it; a node
// not running counts for nothing.
func TestDoubled(t *testing.T) {
	emb, err := bus.StartEmbedded(bus.EmbeddedOptions{NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	st := &stack.Stack{}
	for i := range 4 {
		b, err := bus.Connect(bus.Options{Embedded: emb, Name: fmt.Sprint("node-", i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		n, err := medianode.New(medianode.Options{ID: fmt.Sprint("sim-", i+1), Platform: "p", Room: "r"}, b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i < 3 { // sim-4 never starts
			if err := n.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(n.Kill)
		}
		st.Nodes = append(st.Nodes, n)
	}
	for i, hosted := range [][]string{{"701", "702", "704"}, {"701", "704"}, {"702", "703", "704"}, {"703"}} {
		for _, e := range hosted {
			st.Nodes[i].Inject(e, 0)
		}
	}
	for _, tc := range []struct {
		nodes []int
		want  int
	}{
		{[]int{0}, 3},    // 701 on sim-2; 702 and 704 on sim-3
		{[]int{1}, 2},    // 701 and 704 on sim-1
		{[]int{1, 2}, 3}, // 701, 702 and 704 on sim-1
		{[]int{0, 1}, 3}, // 701 on both, once; 702 and 704 on sim-3
		{[]int{0, 1, 2}, 3},
		{[]int{2}, 2}, // 703 on sim-4, which does not run, is not doubled
		{nil, 0},
	} {
		if got := Doubled(st, tc.nodes); got != tc.want {
			t.Errorf("Doubled(%v) = %d, want %d", tc.nodes, got, tc.want)
		}
	}
	st.Nodes[2].Kill()
	if got := Doubled(st, []int{0}); got != 2 {
		t.Errorf("with sim-3 stopped, Doubled([0]) = %d, want 2 (701 and 704 on sim-2)", got)
	}
}

// A failure's conferences run again when each of them was announced
// running: notices of other conferences (a node taken down meanwhile) do
// not count, and the time is that of the last of its own.
func TestWaitRestored(t *testing.T) {
	ctx := context.Background()
	w := &Watcher{Start: time.Now(), running: map[string]time.Duration{}, wake: make(chan struct{}, 1)}
	w.running["701"] = 3 * time.Second
	w.running["999"] = 9 * time.Second // another node's conference
	go func() {
		w.mu.Lock()
		w.running["702"] = 5 * time.Second
		w.mu.Unlock()
		w.wake <- struct{}{}
	}()
	at, err := w.WaitRestored(ctx, []string{"701", "702"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got := at.Sub(w.Start); got != 5*time.Second {
		t.Fatalf("all running at %s after the watch began, want 5s (702's notice, not 999's)", got)
	}
	if _, err := w.WaitRestored(ctx, []string{"701", "703"}, 10*time.Millisecond); err == nil || !strings.Contains(err.Error(), "1 of 2 conferences") {
		t.Fatalf("703 never runs: got %v, want 1 of 2 conferences not running", err)
	}
}
