package bench

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/protocol"
)

// Scale on a small platform: it fills it, prints every figure, goes
// through the crash, the freeze and the room failure, and every audit
// holds with the same conferences running. No figure's value is checked:
// they are measures, not assertions.
func TestBenchScaleSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a platform of 40 nodes and 1,000 conferences")
	}
	b := Scale{Nodes: 40, Rooms: 2, Conferences: 1000, Concurrency: 8, Sample: 90, Settle: 100 * time.Millisecond,
		Wait: 2 * time.Minute, Store: "embedded", Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := b.Run(context.Background(), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	text := out.String()
	if !res.OK() {
		t.Fatalf("an audit failed or a conference was lost:\n%s", text)
	}
	if len(res.audits) != 3 || len(res.p99) != 3 {
		t.Fatalf("%d audits and %d create points, want 3 of each:\n%s", len(res.audits), len(res.p99), text)
	}
	for _, want := range []struct {
		line  string
		times int
	}{
		{"bench scale: 40 simulated nodes in 2 rooms", 1},
		{"create at  10%   100 running: p50 ", 1},
		{"create at  50%   500 running: p50 ", 1},
		{"create at 100%   1000 running: p50 ", 1},
		{"p99 flatness     p99 at 100% / p99 at 10% = ", 1},
		{"live heap, ", 1},
		{"live heap per conference added from 100 to 1000", 1},
		{"memory by owner  per conference added: ", 1},
		{"idle CPU         ", 1},
		{"crash of sim-", 1},
		{"freeze of sim-", 1},
		{"room failure of bench-r", 1},
		{"  detection        ", 3},
		{"  all running      ", 3},
		{"  doubled until    ", 3},
		{"1000 running, 0 pending-restore, 0 creating; every invariant holds", 3},
		{"identity         the same 1000 conferences run as before the failures", 3},
		{"result: PASS: every audit holds", 1},
	} {
		if got := strings.Count(text, want.line); got != want.times {
			t.Errorf("%q printed %d times, want %d", want.line, got, want.times)
		}
	}
	if strings.Contains(text, "still doubled") {
		t.Errorf("a conference stayed doubled:\n%s", text)
	}
	if t.Failed() {
		t.Log(text)
	}
}

func TestBenchScaleFlags(t *testing.T) {
	good := Scale{Nodes: 1000, Rooms: 2, Conferences: 100000, Concurrency: 32, Sample: 6000, Wait: 2 * time.Minute, Store: "embedded"}
	if err := good.Validate(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Scale)
		want string
	}{
		{"one room", func(b *Scale) { b.Rooms = 1 }, "--rooms"},
		{"too few nodes", func(b *Scale) { b.Nodes = 3 }, "--nodes"},
		{"sample over 10%", func(b *Scale) { b.Sample = 10001 }, "--sample"},
		{"sample too small", func(b *Scale) { b.Sample = 2 }, "--sample"},
		{"no workers", func(b *Scale) { b.Concurrency = 0 }, "--concurrency"},
		{"unknown store", func(b *Scale) { b.Store = "etcd" }, "--store"},
		{"negative settle", func(b *Scale) { b.Settle = -time.Second }, "--settle"},
		{"no wait", func(b *Scale) { b.Wait = 0 }, "--wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := good
			tc.edit(&b)
			if err := b.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %s", err, tc.want)
			}
		})
	}
	// Each node has room for its share of a failed room's conferences and
	// of the two nodes lost before.
	if got, need := good.capacity(), 100000/(1000/2-2); got <= need {
		t.Fatalf("capacity %d, want more than %d", got, need)
	}
}

func TestConvenePackage(t *testing.T) {
	for _, tc := range []struct {
		fn, want string
		ok       bool
	}{
		{"github.com/convene/convene/internal/medianode.(*Node).handleCreate", "medianode", true},
		{"github.com/convene/convene/internal/scheduler.(*controlSet).add", "scheduler", true},
		{"github.com/convene/convene/internal/bus/busplugin.(*Server).Start", "bus", true},
		{"github.com/convene/convene/internal/store.Open.func1", "store", true},
		{"github.com/alicebob/miniredis/v2.(*RedisDB).hashSet", "", false},
		{"encoding/json.(*decodeState).object", "", false},
	} {
		got, ok := convenePackage(tc.fn)
		if got != tc.want || ok != tc.ok {
			t.Errorf("convenePackage(%q) = %q, %v; want %q, %v", tc.fn, got, ok, tc.want, tc.ok)
		}
	}
}

// Owners print in a fixed order, per conference added, leaving out those
// that shrank or barely grew.
func TestHeapOwnersPerConference(t *testing.T) {
	before := heapOwners{"store": 1 << 20, "nodes": 1 << 20, "scheduler": 4 << 20, "zeta": 0}
	after := heapOwners{"store": 1<<20 + 2048*1000, "nodes": 1<<20 + 512*1000, "scheduler": 3 << 20, "zeta": 1024 * 1000, "other": 10 * 1000, "api": 300 * 1000}
	want := "store 2.00 KB, nodes 0.50 KB, api 0.29 KB, zeta 1.00 KB"
	if got := after.perConference(before, 1000); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := before.perConference(before, 1000); got != "none grew" {
		t.Fatalf("nothing grew: got %q", got)
	}
}

// A conference gone from the store is lost; one still there but waiting
// for a restore is not, and neither is counted as the other.
func TestCompareSets(t *testing.T) {
	run := func(room string) confPlace { return confPlace{room: room, state: protocol.StateRunning} }
	before := map[string]confPlace{"701": run("r1"), "702": run("r1"), "703": run("r2"), "704": run("r2")}
	now := map[string]confPlace{
		"702": {room: "r1", state: protocol.StatePendingRestore},
		"703": run("r1"),
		"704": run("r2"),
		"799": run("r2"),
	}
	gone, waiting, extra, inFailed, some := compareSets(before, now, "r1")
	if gone != 1 || waiting != 1 || extra != 1 || inFailed != 1 {
		t.Fatalf("gone %d, waiting %d, new %d, in the failed room %d; want 1 of each", gone, waiting, extra, inFailed)
	}
	if want := []string{"701", "702"}; !slices.Equal(some, want) {
		t.Fatalf("named %v, want %v", some, want)
	}
	if gone, waiting, extra, inFailed, _ := compareSets(before, before, ""); gone+waiting+extra+inFailed != 0 {
		t.Fatalf("the same set: gone %d, waiting %d, new %d, in the failed room %d", gone, waiting, extra, inFailed)
	}
}
