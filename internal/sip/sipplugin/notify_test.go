package sipplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/bus/busplugin"
	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// busHost runs a SIP node on the embedded bus and store and a SQLite
// records file, and returns the host and a bus connection with the API's
// role (the event stream's).
func busHost(t *testing.T) (*host.Host, *bus.Bus) {
	t.Helper()
	dir := t.TempDir()
	f, err := host.Parse("edge.yaml", []byte(fmt.Sprintf(`
host: {name: edge-1, data_dir: %q}
infrastructure:
  bus: {plugin: convene.bus.nats, embedded: {listen: none, in_memory: true}}
  store: {plugin: convene.store.redis, embedded: {in_memory: true}}
  records: {plugin: convene.records.sql, url: %q}
servers:
  sip: {plugin: convene.sip.proxy, name: sip-a, listen: "127.0.0.1:0"}
`, dir, filepath.Join(dir, "records.db"))))
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(f, host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = h.Stop(ctx)
	})
	res, ok := h.Instance("bus")
	if !ok {
		t.Fatal("no bus")
	}
	b, err := res.(*busplugin.Server).Resource().(busplugin.Resource).Connect(bus.RoleAPI, "test-api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return h, b
}

// changes collects the call changes announced on the platform's subject.
type changes struct {
	mu   sync.Mutex
	list []cdr.Change
}

func (c *changes) kinds() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, ch := range c.list {
		out = append(out, ch.Kind+" "+ch.Call.ID)
	}
	return out
}

func follow(t *testing.T, b *bus.Bus) *changes {
	t.Helper()
	c := &changes{}
	_, err := b.Subscribe(protocol.SubjectCallNotify(config.Demo().Platform), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var ch cdr.Change
		if err := json.Unmarshal(m.Data, &ch); err != nil {
			t.Errorf("not a change: %s", m.Data)
			return
		}
		c.mu.Lock()
		c.list = append(c.list, ch)
		c.mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// The SIP node announces each change of a call it records on the
// platform's call notification subject, in order, as the event stream
// reads it.
func TestProxyAnnouncesCallChanges(t *testing.T) {
	h, b := busHost(t)
	seen := follow(t, b)
	inst, ok := h.Instance("sip")
	if !ok {
		t.Fatal("no SIP node")
	}
	p := inst.(*Proxy)
	ctx := context.Background()
	e := cdr.CallEvent{CallID: "announced-1", FromTag: "f1", Caller: "8001001", Called: "8002002", Type: cdr.Video, Node: "sip-a",
		Start: time.Now().Add(-time.Minute).Truncate(time.Millisecond)}
	if err := p.svc.CallStarted(ctx, e); err != nil {
		t.Fatal(err)
	}
	e.Answer = e.Start.Add(2 * time.Second)
	if err := p.svc.CallAnswered(ctx, e); err != nil {
		t.Fatal(err)
	}
	e.End, e.Status = e.Answer.Add(30*time.Second), 200
	if err := p.svc.CallEnded(ctx, e); err != nil {
		t.Fatal(err)
	}
	id := cdr.RecordID("announced-1", "f1")
	want := fmt.Sprint([]string{cdr.ChangeStarted + " " + id, cdr.ChangeAnswered + " " + id, cdr.ChangeEnded + " " + id})
	testkit.AwaitWithin(t, 20*time.Second, "the three changes", func() bool { return fmt.Sprint(seen.kinds()) == want })
	seen.mu.Lock()
	last := seen.list[2].Call
	seen.mu.Unlock()
	if last.End == nil || last.DurationSeconds != 30 || last.Caller != "8001001" || !last.Connected {
		t.Fatalf("the end announced %+v", last)
	}
	if p.notes.published.Load() != 3 || p.notes.dropped.Load() != 0 {
		t.Fatalf("published %d, dropped %d", p.notes.published.Load(), p.notes.dropped.Load())
	}
}

// With the bus down, changes are dropped and counted, at once: the
// recorder never waits for the bus.
func TestNotifierDropsWhileTheBusIsDown(t *testing.T) {
	h, api := busHost(t)
	seen := follow(t, api)
	res, _ := h.Instance("bus")
	b, err := res.(*busplugin.Server).Resource().(busplugin.Resource).Connect(bus.RoleSIP, "test-sip")
	if err != nil {
		t.Fatal(err)
	}
	n := newNotifier(config.Demo().Platform, nil)
	n.start(b)
	n.offer(cdr.Change{Kind: cdr.ChangeStarted, Call: cdr.CDR{ID: "before"}})
	testkit.AwaitWithin(t, 20*time.Second, "the change sent while the bus is up", func() bool { return len(seen.kinds()) == 1 })
	b.Close()
	const offered = 3 * notifierQueue
	for i := range offered {
		n.offer(cdr.Change{Kind: cdr.ChangeEnded, Call: cdr.CDR{ID: fmt.Sprint(i)}})
	}
	n.close()
	if n.dropped.Load() != offered || n.published.Load() != 1 {
		t.Fatalf("dropped %d of %d, published %d", n.dropped.Load(), offered, n.published.Load())
	}
	// Closed: a late change is dropped too, never queued for nobody.
	n.offer(cdr.Change{Kind: cdr.ChangeEnded})
	if n.dropped.Load() != offered+1 {
		t.Fatalf("dropped %d after close", n.dropped.Load())
	}
}
