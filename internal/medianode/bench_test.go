package medianode

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// BenchmarkCreate pushes creates through one node, request/reply, from
// many concurrent requesters: the node's side of the create path.
func BenchmarkCreate(b *testing.B) {
	emb := testkit.BusServer(b, bus.EmbeddedOptions{NoListen: true})
	nb, sched := testkit.Connect(b, emb, "node"), testkit.Connect(b, emb, "scheduler")
	n, err := New(Options{ID: "sim-1", Room: "room-a1", Platform: "plat-a", Capacity: 1 << 30, HeartbeatInterval: time.Hour, ConfListInterval: time.Hour}, nb, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer n.Kill()
	var seq atomic.Int64
	subject := protocol.SubjectToNode("sim-1")
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := protocol.NodeConfReq{Type: protocol.MAUMCUCreateConfReq, Conf: protocol.Conference{
				E164: e164(int(seq.Add(1))), Name: "bench", Domain: "dom-1", Platform: "plat-a", State: protocol.StateCreating,
				Scale: 32, Resolution: "1080p", EndTime: 1_700_000_000_000, DurationMinutes: 60,
			}}
			if err := sched.Call(context.Background(), subject, req, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}

// BenchmarkConfList builds and encodes the conference list of a node
// hosting 10,000 conferences.
func BenchmarkConfList(b *testing.B) {
	n := &Node{opts: Options{ID: "sim-1", Room: "room-a1", Platform: "plat-a"}, confs: make(map[string]*conf)}
	for i := range 10_000 {
		n.Inject(e164(i), int64(i))
	}
	b.ReportAllocs()
	for b.Loop() {
		ntf := n.buildConfList(true)
		ntf.Type, ntf.Node = protocol.MCUConfListNtf, "sim-1"
		if _, err := json.Marshal(ntf); err != nil {
			b.Fatal(err)
		}
	}
}
