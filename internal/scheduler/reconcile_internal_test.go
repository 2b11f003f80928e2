package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

func digestOf(confs map[string]int64) uint64 {
	var d uint64
	for e, ct := range confs {
		d ^= protocol.ListEntryHash(e, ct)
	}
	return d
}

func wholeList(node, pid string, version uint64, confs map[string]int64) protocol.ConfListNtf {
	ntf := protocol.ConfListNtf{Type: protocol.MCUConfListNtf, Node: node, IP: "10.0.0.1", PID: pid, Room: "r1",
		Version: version, Count: len(confs), Digest: digestOf(confs), SentAtMs: time.Now().UnixMilli()}
	for e, ct := range confs {
		ntf.Confs = append(ntf.Confs, protocol.ConfListEntry{E164: e, CreateTime: ct})
	}
	return ntf
}

func deltaList(node, pid string, since, version uint64, after map[string]int64, added map[string]int64, removed ...string) protocol.ConfListNtf {
	ntf := protocol.ConfListNtf{Type: protocol.MCUConfListNtf, Node: node, IP: "10.0.0.1", PID: pid, Room: "r1", Delta: true,
		Since: since, Version: version, Count: len(after), Digest: digestOf(after), Removed: removed, SentAtMs: time.Now().UnixMilli()}
	for e, ct := range added {
		ntf.Confs = append(ntf.Confs, protocol.ConfListEntry{E164: e, CreateTime: ct})
	}
	return ntf
}

func TestTakeListKeepsTheNodesList(t *testing.T) {
	s := &Scheduler{lists: map[string]nodeList{}}
	confs := map[string]int64{"1": 10, "2": 20, "3": 30}
	l, changed, whole, ok := s.takeList(wholeList("n1", "p", 5, confs))
	if !ok || !whole || len(l.confs) != 3 || l.version != 5 || l.digest != digestOf(confs) || changed != nil {
		t.Fatalf("first whole list: ok %v, whole %v, %d held, changed %v", ok, whole, len(l.confs), changed)
	}
	held := l.confs

	// A delta from the held version on: applied to a new map.
	after := map[string]int64{"1": 10, "3": 31, "4": 40}
	l, changed, whole, ok = s.takeList(deltaList("n1", "p", 5, 8, after, map[string]int64{"3": 31, "4": 40}, "2"))
	if !ok || whole || len(l.confs) != 3 || l.confs["3"] != 31 || l.confs["4"] != 40 || l.version != 8 || len(changed) != 3 {
		t.Fatalf("delta: ok %v, whole %v, held %v, changed %v", ok, whole, l.confs, changed)
	}
	if len(held) != 3 || held["3"] != 30 || held["2"] != 20 {
		t.Fatalf("the delta changed the map handed out before: %v", held)
	}
	// A delta from an older acknowledged version that repeats changes:
	// the conferences the held list has already are no change; one ended,
	// held or not, is.
	if _, changed, _, ok := s.takeList(deltaList("n1", "p", 5, 9, after, map[string]int64{"3": 31, "4": 40}, "2")); !ok || len(changed) != 1 || changed[0] != "2" {
		t.Fatalf("a delta repeating what the held list has: ok %v, changed %v", ok, changed)
	}
	for name, ntf := range map[string]protocol.ConfListNtf{
		"from a version after the held one": deltaList("n1", "p", 12, 13, after, nil),
		"of another process":                deltaList("n1", "q", 9, 9, after, nil),
		"of another node":                   deltaList("n2", "p", 9, 9, after, nil),
		"that does not add up":              deltaList("n1", "p", 9, 10, map[string]int64{"1": 10}, nil),
		"older than the held list":          wholeList("n1", "p", 7, after),
	} {
		if _, _, _, ok := s.takeList(ntf); ok {
			t.Fatalf("a list %s was taken", name)
		}
	}
	if got := s.lists["n1"]; got.version != 9 || len(got.confs) != 3 {
		t.Fatalf("a refused list changed the held one: version %d, %v", got.version, got.confs)
	}
	// A whole list of the same process: what changed is the difference.
	_, changed, whole, ok = s.takeList(wholeList("n1", "p", 11, map[string]int64{"1": 10, "4": 41, "5": 50}))
	if !ok || whole || len(changed) != 3 {
		t.Fatalf("second whole list: ok %v, whole %v, changed %v", ok, whole, changed)
	}
	// A list of a new process is compared whole.
	if _, _, whole, ok = s.takeList(wholeList("n1", "q", 1, nil)); !ok || !whole {
		t.Fatalf("a new process's list: ok %v, whole %v", ok, whole)
	}
}

// listPlatform is an active scheduler on the embedded bus and store with
// n conferences running on node n1, whose ip and pid are 10.0.0.1 and "p".
func listPlatform(t testing.TB, n int) (*Scheduler, *store.Store, *bus.Bus, map[string]int64) {
	t.Helper()
	ctx := context.Background()
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = n + 10
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
	b := testkit.Dial(t, bus.Options{Embedded: emb, Name: "list-test"})
	es, err := store.StartEmbedded("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(es.Close)
	st, err := store.Open(ctx, store.Options{URL: es.URL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s, err := New(Options{
		Platform: "p1", LeaseTTL: 10 * time.Second, LeaseRenew: 3 * time.Second, StartGrace: time.Minute,
		RestoreInterval: time.Minute, SweepInterval: time.Minute, EndCheckInterval: time.Minute, MonitorTTL: time.Hour,
	}, Deps{Bus: b, Store: st, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	class, _ := license.ClassOf(8, "720p")
	confs := make(map[string]int64, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				num := fmt.Sprintf("51%06d", i)
				_, err := st.Reserve(ctx, store.Reservation{
					Conf:      protocol.Conference{E164: num, Name: "c", Domain: "acme", Platform: "p1", RealPlatform: "p1", Scale: 8, Resolution: "720p", DurationMinutes: 600, EndTime: time.Now().Add(10 * time.Hour).UnixMilli()},
					Class:     class,
					Numbering: store.Numbering{Platform: "p1", Segment: "51", Digits: 6},
				})
				if err == nil {
					_, err = st.Commit(ctx, store.Placement{E164: num, Node: "n1", IP: "10.0.0.1", PID: "p", Room: "r1", RealPlatform: "p1"})
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				confs[num] = int64(i + 1)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	return s, st, b, confs
}

func listMsg(t testing.TB, ntf protocol.ConfListNtf) *bus.Msg {
	t.Helper()
	data, err := json.Marshal(ntf)
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Msg{Subject: protocol.SubjectFromNodes("p1"), Type: ntf.Type, Data: data}
}

// A node's list that changes nothing reads nothing from the store,
// however many conferences it hosts; one that changes a little costs
// reading what changed.
func TestNodeListComparedIncrementally(t *testing.T) {
	const n = 3000
	s, st, b, confs := listPlatform(t, n)
	ctx := context.Background()
	var (
		mu   sync.Mutex
		told []*bus.Msg
	)
	sub, err := b.Subscribe(protocol.SubjectToNode("n1"), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		mu.Lock()
		told = append(told, m)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	sent := func(typ string) []*bus.Msg {
		_ = b.Flush(ctx)
		mu.Lock()
		defer mu.Unlock()
		var out []*bus.Msg
		for _, m := range told {
			if m.Type == typ {
				out = append(out, m)
			}
		}
		return out
	}

	s.handleConfList(ctx, listMsg(t, wholeList("n1", "p", 5, confs)))
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the list acknowledged", func() bool { return len(sent(protocol.MAUMCUConfListAck)) == 1 }))
	const reports = 20
	before := st.Stats().RoundTrips
	for range reports {
		s.handleConfList(ctx, listMsg(t, deltaList("n1", "p", 5, 5, confs, nil)))
	}
	if trips := st.Stats().RoundTrips - before; trips > 2 {
		t.Fatalf("%d lists that changed nothing cost %d store round trips", reports, trips)
	}
	if m := sent(protocol.MAUMCUReleaseConfsCmd); len(m) != 0 {
		t.Fatalf("lists that changed nothing released %d times", len(m))
	}

	// The node hosts one conference more, unknown to the store, and lost
	// one it had: the first ends there, the second ends in the store.
	var gone string
	for e := range confs {
		gone = e
		break
	}
	after := make(map[string]int64, n)
	for e, ct := range confs {
		if e != gone {
			after[e] = ct
		}
	}
	after["519999999"] = 1
	d := deltaList("n1", "p", 5, 7, after, map[string]int64{"519999999": 1}, gone)
	d.SentAtMs += time.Minute.Milliseconds() // taken long after the conferences began
	s.handleConfList(ctx, listMsg(t, d))
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the unknown conference released", func() bool { return len(sent(protocol.MAUMCUReleaseConfsCmd)) == 1 }))
	var cmd protocol.ConfsCmd
	if err := sent(protocol.MAUMCUReleaseConfsCmd)[0].Decode(&cmd); err != nil {
		t.Fatal(err)
	}
	if len(cmd.E164s) != 1 || cmd.E164s[0] != "519999999" {
		t.Fatalf("released %v", cmd.E164s)
	}
	if ok, _ := st.Exists(ctx, gone); ok {
		t.Fatalf("%s, gone from its node, is still in the store", gone)
	}
	if l, err := st.NodeLoads(ctx, []string{"n1"}); err != nil || l["n1"] != n-1 {
		t.Fatalf("the store counts %d on n1 (%v), want %d", l["n1"], err, n-1)
	}
	if len(sent(protocol.MAUMCUConfListAck)) != 2 {
		t.Fatal("the delta was not acknowledged")
	}
	// A delta the scheduler cannot apply: it asks for the whole list.
	s.handleConfList(ctx, listMsg(t, deltaList("n1", "p", 9, 10, after, nil)))
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the whole list asked for", func() bool { return len(sent(protocol.MAUMCUGetConfListCmd)) == 1 }))
}

// BenchmarkNodeListUnchanged handles the list of a node hosting 40,000
// conferences that changed nothing since the last one, as a delta and
// (from a node that sends no versions) whole.
func BenchmarkNodeListUnchanged(b *testing.B) {
	s, _, _, confs := listPlatform(b, 40_000)
	ctx := context.Background()
	s.handleConfList(ctx, listMsg(b, wholeList("n1", "p", 5, confs)))
	b.Run("delta", func(b *testing.B) {
		m := listMsg(b, deltaList("n1", "p", 5, 5, confs, nil))
		for b.Loop() {
			s.handleConfList(ctx, m)
		}
	})
	b.Run("whole", func(b *testing.B) {
		m := listMsg(b, wholeList("n1", "p", 5, confs))
		for b.Loop() {
			s.handleConfList(ctx, m)
		}
	})
}

// BenchmarkReturningNodeCompare compares the whole list of a node back
// from a hang whose 100,000 copies were all restored elsewhere meanwhile.
func BenchmarkReturningNodeCompare(b *testing.B) {
	s, _, _, confs := listPlatform(b, 100_000)
	ctx := context.Background()
	stale := make(map[string]int64, len(confs))
	for e := range confs {
		stale[e] = 0 // older than any copy the store counts
	}
	s.handleConfList(ctx, listMsg(b, wholeList("n1", "p", 5, confs)))
	ntf := wholeList("n9", "q", 3, stale)
	l, _, _, ok := s.takeList(ntf)
	if !ok {
		b.Fatal("list not taken")
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.compareAll(ctx, ntf, l); err != nil {
			b.Fatal(err)
		}
	}
}

func TestUnknownTypeIsTheRefusalOfAnOldNode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&bus.NackError{Type: protocol.ErrorReplyType, Code: protocol.ErrBadRequest, Message: `unknown message type "MAU_MCU_RESTORECONFS_REQ" on mcu.n1`}, true},
		{fmt.Errorf("wrapped: %w", &bus.NackError{Type: protocol.ErrorReplyType, Code: protocol.ErrBadRequest, Message: `unknown message type "X" on mcu.n1`}), true},
		{&bus.NackError{Type: protocol.MCURestoreConfsNack, Code: protocol.ErrBadRequest, Message: "a list of conferences is required"}, false},
		{&bus.NackError{Type: protocol.ErrorReplyType, Code: "NODE_BUSY", Message: "unknown message type"}, false},
		{bus.ErrTimeout, false},
		{nil, false},
	} {
		if got := unknownType(tc.err); got != tc.want {
			t.Errorf("unknownType(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// A conference restored onto a node is not in a list that node took before
// the restore reached it; that list, read after the restore committed,
// must not end the conference, however long the restore took.
func TestListTakenBeforeARestoreEndsNothing(t *testing.T) {
	s, st, _, confs := listPlatform(t, 20)
	ctx := context.Background()
	var moved string
	for e := range confs {
		moved = e
		break
	}
	// n1 was lost; the conference's restore onto n2 began half a minute
	// ago (a slow wave) and n2 acknowledged it just now.
	started, err := st.MoveRestores(ctx, "n1", "test: n1 lost", "n2", "r1", []string{moved})
	if err != nil || len(started) != 1 || started[0].Err != nil {
		t.Fatalf("restore begun: %v %+v", err, started)
	}
	if err := st.Client().HSet(ctx, "confex/"+moved+"/", "createtime", time.Now().Add(-30*time.Second).UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	if errs, err := st.CommitRestores(ctx, []store.Placement{{E164: moved, Node: "n2", IP: "10.0.0.2", PID: "q", Room: "r1", RealPlatform: "p1"}}); err != nil || errs[0] != nil {
		t.Fatalf("restore committed: %v %v", err, errs)
	}
	placed := time.Now().UnixMilli()
	// n2's list, taken a second before the restore reached it, lacks it.
	ntf := protocol.ConfListNtf{Type: protocol.MCUConfListNtf, Node: "n2", IP: "10.0.0.2", PID: "q", Room: "r1",
		Version: 1, Count: 0, Digest: 0, SentAtMs: placed - time.Second.Milliseconds()}
	s.handleConfList(ctx, listMsg(t, ntf))
	if c, err := st.Conference(ctx, moved); err != nil || c.State != protocol.StateRunning || c.Node != "n2" {
		t.Fatalf("after a list taken before its restore, %s is %+v (%v); want running on n2", moved, c, err)
	}
	// A list n2 takes long after the restore and still lacks it: the
	// conference ended there.
	ntf.Version, ntf.SentAtMs = 2, placed+time.Minute.Milliseconds()
	s.handleConfList(ctx, listMsg(t, ntf))
	testkit.Eventually(t, testkit.Wait, testkit.Cond(moved+" cleared once its node's later list lacks it", func() bool {
		ok, _ := st.Exists(ctx, moved)
		return !ok
	}))
}

// A conference waiting for its restore (its node or room was lost, and
// the node told to let it go) is not in that node's next list; the list
// must not end it: it waits for its restore elsewhere.
func TestListOfALostNodeEndsNoPendingConference(t *testing.T) {
	s, st, _, confs := listPlatform(t, 20)
	ctx := context.Background()
	var pend []string
	rest := map[string]int64{}
	for e, ct := range confs {
		if len(pend) < 5 {
			pend = append(pend, e)
		} else {
			rest[e] = ct
		}
	}
	moved, _, err := st.Pend(ctx, "n1", "test: room r1 failed", pend, nil)
	if err != nil || len(moved) != len(pend) {
		t.Fatalf("pended %v of %v: %v", moved, pend, err)
	}
	// The same process of n1, long after, no longer hosts them.
	ntf := wholeList("n1", "p", 9, rest)
	ntf.SentAtMs += time.Minute.Milliseconds()
	s.handleConfList(ctx, listMsg(t, ntf))
	for _, e := range pend {
		c, err := st.Conference(ctx, e)
		if err != nil || c.State != protocol.StatePendingRestore {
			t.Fatalf("%s after its lost node's list: %+v (%v); want pending-restore", e, c, err)
		}
	}
}
