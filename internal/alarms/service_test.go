package alarms

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/testkit"
)

const plat = "plat-t"

// fakeStore is a store whose answers a test sets.
type fakeStore struct {
	mu      sync.Mutex
	down    bool
	usage   map[string]license.Usage
	pending map[string]protocol.Conference
}

func (f *fakeStore) Ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("dial tcp: connection refused")
	}
	return nil
}

func (f *fakeStore) License(_ context.Context, moid string) (license.Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.usage[moid], nil
}

func (f *fakeStore) Pending(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for e, c := range f.pending {
		if c.State == protocol.StatePendingRestore {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *fakeStore) Conferences(_ context.Context, e164s []string) ([]protocol.Conference, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []protocol.Conference
	for _, e := range e164s {
		if c, ok := f.pending[e]; ok {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeStore) set(fn func(f *fakeStore)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

// flakyRecords is a real records database that can be made unreachable,
// or lose the replies of writes it made.
type flakyRecords struct {
	*records.DB
	down atomic.Bool
	lose atomic.Int32 // replies still to lose
}

// lost reports whether the reply of a write just made is to be lost.
func (r *flakyRecords) lost() bool {
	for {
		n := r.lose.Load()
		if n <= 0 {
			return false
		}
		if r.lose.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

var errDown = fmt.Errorf("%w: connection refused", records.ErrUnavailable)

func (r *flakyRecords) RaiseAlarm(ctx context.Context, a records.Alarm) (records.Alarm, error) {
	if r.down.Load() {
		return records.Alarm{}, errDown
	}
	got, err := r.DB.RaiseAlarm(ctx, a)
	if err == nil && r.lost() {
		return records.Alarm{}, errDown
	}
	return got, err
}

func (r *flakyRecords) ClearAlarm(ctx context.Context, id string, at time.Time) (records.Alarm, error) {
	if r.down.Load() {
		return records.Alarm{}, errDown
	}
	got, err := r.DB.ClearAlarm(ctx, id, at)
	if err == nil && r.lost() {
		return records.Alarm{}, errDown
	}
	return got, err
}

func (r *flakyRecords) AckAlarm(ctx context.Context, id string, at time.Time) (records.Alarm, error) {
	if r.down.Load() {
		return records.Alarm{}, errDown
	}
	return r.DB.AckAlarm(ctx, id, at)
}

func (r *flakyRecords) Alarms(ctx context.Context, activeOnly bool, limit int) ([]records.Alarm, error) {
	if r.down.Load() {
		return nil, errDown
	}
	return r.DB.Alarms(ctx, activeOnly, limit)
}

// world is an embedded bus with a stand-in RMS whose nodes a test sets,
// a fake store, a records database, and the events announced.
type world struct {
	t     *testing.T
	emb   *bus.Embedded
	st    *fakeStore
	recs  *flakyRecords
	mu    sync.Mutex
	nodes []protocol.NodeInfo
	evs   []apiclient.AlarmEvent
}

func newWorld(t *testing.T) *world {
	t.Helper()
	emb, err := bus.StartEmbedded(bus.EmbeddedOptions{NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	db, err := records.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "records.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	w := &world{t: t, emb: emb, st: &fakeStore{pending: map[string]protocol.Conference{}}, recs: &flakyRecords{DB: db}}
	b := w.connect("rms")
	_, err = b.Subscribe(protocol.SubjectRMS(plat), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		w.mu.Lock()
		nodes := append([]protocol.NodeInfo(nil), w.nodes...)
		w.mu.Unlock()
		_ = m.Respond(protocol.NodeListAck{Type: protocol.RMSNodeListAck, Nodes: nodes})
	}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Subscribe(protocol.SubjectAlarmNotify(plat), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var ev apiclient.AlarmEvent
		if err := m.Decode(&ev); err != nil {
			t.Errorf("alarm event: %v", err)
			return
		}
		w.mu.Lock()
		w.evs = append(w.evs, ev)
		w.mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) connect(name string) *bus.Bus {
	w.t.Helper()
	b, err := bus.Connect(bus.Options{Embedded: w.emb, Name: name}, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(b.Close)
	return b
}

func (w *world) setNode(id, state string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.nodes {
		if w.nodes[i].Node == id {
			w.nodes[i].State = state
			return
		}
	}
	w.nodes = append(w.nodes, protocol.NodeInfo{Node: id, State: state})
}

// events counts the events of type typ announced for a cause.
func (w *world) events(typ string, k Key) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, ev := range w.evs {
		if ev.Type == typ && ev.Alarm.Kind == k.Kind && ev.Alarm.Subject == k.Subject {
			n++
		}
	}
	return n
}

// start runs a service on the world, checking every few milliseconds.
func (w *world) start(opts Options, recs Records, tweak ...func(*Deps)) *Service {
	w.t.Helper()
	opts.Platform = plat
	opts.Interval = 5 * time.Millisecond
	deps := Deps{Bus: w.connect("alarms"), Store: w.st, Records: recs}
	for _, f := range tweak {
		f(&deps)
	}
	s, err := New(opts, deps)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// settle waits for n more complete passes of s's checks.
func settle(t *testing.T, s *Service, n uint64) {
	t.Helper()
	from := s.passes.Load()
	testkit.AwaitWithin(t, 20*time.Second, fmt.Sprintf("%d passes", n), func() bool { return s.passes.Load() >= from+n+1 })
}

func activeFor(s *Service, k Key) (apiclient.Alarm, bool) {
	for _, a := range s.Active() {
		if a.Kind == k.Kind && a.Subject == k.Subject {
			return a, true
		}
	}
	return apiclient.Alarm{}, false
}

func stored(t *testing.T, db *records.DB, k Key) []records.Alarm {
	t.Helper()
	all, err := db.Alarms(context.Background(), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []records.Alarm
	for _, a := range all {
		if keyOf(a) == k {
			out = append(out, a)
		}
	}
	return out
}

// A node down for many passes is one alarm, announced once, written once;
// it clears once when the node is back.
func TestOneAlarmPerCause(t *testing.T) {
	w := newWorld(t)
	w.setNode("n1", protocol.NodeUp)
	s := w.start(Options{}, w.recs)
	settle(t, s, 2)
	if len(s.Active()) != 0 {
		t.Fatalf("alarms with every node up: %+v", s.Active())
	}

	w.setNode("n1", protocol.NodeDown)
	testkit.AwaitWithin(t, 20*time.Second, "node_down raised", func() bool { _, ok := activeFor(s, n1); return ok })
	settle(t, s, 5)
	a, _ := activeFor(s, n1)
	if a.Severity != apiclient.SeverityMajor || a.ClearedAt != nil {
		t.Fatalf("alarm %+v", a)
	}
	testkit.AwaitWithin(t, 20*time.Second, "written", func() bool { return len(stored(t, w.recs.DB, n1)) == 1 })

	w.setNode("n1", protocol.NodeUp)
	testkit.AwaitWithin(t, 20*time.Second, "node_down cleared", func() bool { _, ok := activeFor(s, n1); return !ok })
	settle(t, s, 3)
	testkit.AwaitWithin(t, 20*time.Second, "announced", func() bool { return w.events(apiclient.AlarmCleared, n1) == 1 })
	if r, c := w.events(apiclient.AlarmRaised, n1), w.events(apiclient.AlarmCleared, n1); r != 1 || c != 1 {
		t.Fatalf("raised %d times, cleared %d times", r, c)
	}
	testkit.AwaitWithin(t, 20*time.Second, "clear written", func() bool {
		l := stored(t, w.recs.DB, n1)
		return len(l) == 1 && !l[0].Active() && l[0].ID == a.ID
	})
	hist := s.History(context.Background())
	if len(hist) != 1 || hist[0].ID != a.ID || hist[0].ClearedAt == nil {
		t.Fatalf("history %+v", hist)
	}
}

// A restarted service takes the alarm it raised before: no second alarm,
// no second announcement.
func TestRestartRaisesNothingTwice(t *testing.T) {
	w := newWorld(t)
	w.setNode("n1", protocol.NodeDown)
	s1 := w.start(Options{}, w.recs)
	testkit.AwaitWithin(t, 20*time.Second, "raised and written", func() bool { return len(stored(t, w.recs.DB, n1)) == 1 })
	first, _ := activeFor(s1, n1)
	if err := s1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	s2 := w.start(Options{}, w.recs)
	settle(t, s2, 5)
	a, ok := activeFor(s2, n1)
	if !ok || a.ID != first.ID {
		t.Fatalf("after a restart: %+v (%v), want %s", a, ok, first.ID)
	}
	if n := w.events(apiclient.AlarmRaised, n1); n != 1 {
		t.Fatalf("raised %d times", n)
	}
	if l := stored(t, w.recs.DB, n1); len(l) != 1 {
		t.Fatalf("stored %+v", l)
	}
}

// While the records database does not answer, alarms live in memory; when
// it answers again they are written, cleared ones too, under their ids.
func TestRecordsDownKeepsAlarms(t *testing.T) {
	w := newWorld(t)
	w.recs.down.Store(true)
	s := w.start(Options{}, w.recs)
	w.setNode("n1", protocol.NodeDown)
	w.setNode("n2", protocol.NodeDown)
	testkit.AwaitWithin(t, 20*time.Second, "raised in memory", func() bool { return len(s.Active()) == 2 })
	a1, _ := activeFor(s, n1)
	w.setNode("n1", protocol.NodeUp)
	testkit.AwaitWithin(t, 20*time.Second, "cleared in memory", func() bool { _, ok := activeFor(s, n1); return !ok })
	settle(t, s, 3)
	if all, _ := w.recs.DB.Alarms(context.Background(), false, 0); len(all) != 0 {
		t.Fatalf("written while down: %+v", all)
	}

	w.recs.down.Store(false)
	testkit.AwaitWithin(t, 20*time.Second, "written when back", func() bool {
		l1, l2 := stored(t, w.recs.DB, n1), stored(t, w.recs.DB, n2)
		return len(l1) == 1 && l1[0].ID == a1.ID && !l1[0].Active() && len(l2) == 1 && l2[0].Active()
	})
}

// Records written by another instance for the same cause, while this one
// could not read them, are adopted: one alarm stays for the cause.
func TestAdoptsTheStoredAlarm(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	old := records.Alarm{ID: "al-old", Kind: n1.Kind, Subject: n1.Subject, Severity: apiclient.SeverityMajor, RaisedAt: time.UnixMilli(1000).UTC()}
	if _, err := w.recs.DB.RaiseAlarm(ctx, old); err != nil {
		t.Fatal(err)
	}
	w.recs.down.Store(true)
	w.setNode("n1", protocol.NodeDown)
	s := w.start(Options{}, w.recs)
	testkit.AwaitWithin(t, 20*time.Second, "raised in memory", func() bool { _, ok := activeFor(s, n1); return ok })
	w.recs.down.Store(false)
	testkit.AwaitWithin(t, 20*time.Second, "adopted", func() bool { a, _ := activeFor(s, n1); return a.ID == "al-old" })
	settle(t, s, 3)
	if l := stored(t, w.recs.DB, n1); len(l) != 1 || l[0].ID != "al-old" || !l[0].Active() {
		t.Fatalf("stored %+v", l)
	}
}

func TestStoreLicencesAndRestores(t *testing.T) {
	w := newWorld(t)
	lic := Key{apiclient.AlarmLicenceHigh, "d1/8_720p"}
	rf := Key{apiclient.AlarmRestoreFailing, "66001"}
	w.st.set(func(f *fakeStore) {
		f.usage = map[string]license.Usage{"d1": {Limits: license.Limits{"8_720p": 10}, InUse: license.Limits{"8_720p": 10}}}
		f.pending["66001"] = protocol.Conference{E164: "66001", State: protocol.StatePendingRestore, RestoreAttempts: 3}
	})
	s := w.start(Options{Domains: []string{"d1"}}, nil)
	testkit.AwaitWithin(t, 20*time.Second, "licence and restore raised", func() bool {
		_, a := activeFor(s, lic)
		_, b := activeFor(s, rf)
		return a && b
	})

	// The store goes: it alarms, and what it alone can tell stays as is.
	w.st.set(func(f *fakeStore) { f.down = true; f.pending = map[string]protocol.Conference{} })
	testkit.AwaitWithin(t, 20*time.Second, "store_unreachable raised", func() bool { _, ok := activeFor(s, st); return ok })
	settle(t, s, 3)
	if _, ok := activeFor(s, rf); !ok {
		t.Fatal("restore_failing cleared while the store could not be read")
	}

	// Back: a restore being tried again is still failing.
	w.st.set(func(f *fakeStore) {
		f.down = false
		f.pending["66001"] = protocol.Conference{E164: "66001", State: protocol.StateCreating, RestoreAttempts: 3}
	})
	testkit.AwaitWithin(t, 20*time.Second, "store_unreachable cleared", func() bool { _, ok := activeFor(s, st); return !ok })
	settle(t, s, 3)
	if _, ok := activeFor(s, rf); !ok {
		t.Fatal("restore_failing cleared while the restore is tried again")
	}
	w.st.set(func(f *fakeStore) {
		f.pending["66001"] = protocol.Conference{E164: "66001", State: protocol.StateRunning, RestoreAttempts: 3}
		f.usage["d1"].InUse["8_720p"] = 9
	})
	testkit.AwaitWithin(t, 20*time.Second, "both cleared", func() bool { return len(s.Active()) == 0 })
	for _, k := range []Key{lic, rf, st} {
		testkit.AwaitWithin(t, 20*time.Second, "clear announced", func() bool { return w.events(apiclient.AlarmCleared, k) >= 1 })
		if r, c := w.events(apiclient.AlarmRaised, k), w.events(apiclient.AlarmCleared, k); r != 1 || c != 1 {
			t.Fatalf("%v raised %d times, cleared %d times", k, r, c)
		}
	}
}

func TestAck(t *testing.T) {
	w := newWorld(t)
	w.setNode("n1", protocol.NodeDown)
	s := w.start(Options{}, w.recs)
	testkit.AwaitWithin(t, 20*time.Second, "raised", func() bool { _, ok := activeFor(s, n1); return ok })
	a, _ := activeFor(s, n1)
	for i := range 2 {
		got, changed, err := s.Ack(context.Background(), a.ID)
		if err != nil || !got.Acked || changed != (i == 0) {
			t.Fatalf("ack %d: %+v changed %v, %v", i, got, changed, err)
		}
	}
	testkit.AwaitWithin(t, 20*time.Second, "ack written", func() bool { l := stored(t, w.recs.DB, n1); return len(l) == 1 && l[0].Acked })
	if n := w.events(apiclient.AlarmAcked, n1); n > 1 {
		t.Fatalf("acked announced %d times", n)
	}
	if _, _, err := s.Ack(context.Background(), "al-none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ack of an unknown alarm: %v", err)
	}
}

// The webhook gets each new alarm once taken, tried again while it fails,
// every try with the alarm's id as its idempotency key.
func TestWebhook(t *testing.T) {
	var (
		mu    sync.Mutex
		keys  []string
		fails = 2
		taken []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		if fails > 0 {
			fails--
			rw.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		taken = append(taken, r.Header.Get("Idempotency-Key"))
		rw.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	w := newWorld(t)
	w.setNode("n1", protocol.NodeDown)
	s := w.start(Options{WebhookURL: srv.URL + "/hook?secret=x", WebhookBackoff: time.Millisecond, WebhookMaxBackoff: 4 * time.Millisecond}, nil)
	testkit.AwaitWithin(t, 20*time.Second, "delivered", func() bool { mu.Lock(); defer mu.Unlock(); return len(taken) == 1 })
	a, _ := activeFor(s, n1)
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 3 || taken[0] != a.ID {
		t.Fatalf("tries %v, taken %v, alarm %s", keys, taken, a.ID)
	}
	for _, k := range keys {
		if k != a.ID {
			t.Fatalf("idempotency keys %v, alarm %s", keys, a.ID)
		}
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{
		{Platform: ""},
		{Platform: plat, LicencePercent: 101},
		{Platform: plat, RestoreAttempts: -1},
		{Platform: plat, WebhookURL: "ftp://x"},
		{Platform: plat, WebhookBackoff: time.Second, WebhookMaxBackoff: time.Millisecond},
	} {
		if err := o.defaults(); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// cutBus is a bus connection a test can say is down.
type cutBus struct {
	*bus.Bus
	down atomic.Bool
}

func (b *cutBus) Connected() bool { return !b.down.Load() && b.Bus.Connected() }

// The bus down alarms; what only the bus can tell (nodes) stays as it is.
func TestBusUnreachable(t *testing.T) {
	w := newWorld(t)
	cb := &cutBus{Bus: w.connect("alarms-cut")}
	bk := Key{apiclient.AlarmBusUnreachable, "bus"}
	w.setNode("n1", protocol.NodeDown)
	s := w.start(Options{}, nil, func(d *Deps) { d.Bus = cb })
	testkit.AwaitWithin(t, 20*time.Second, "node_down raised", func() bool { _, ok := activeFor(s, n1); return ok })
	cb.down.Store(true)
	testkit.AwaitWithin(t, 20*time.Second, "bus_unreachable raised", func() bool { _, ok := activeFor(s, bk); return ok })
	// The node comes back once every pass sees the bus down: a pass that
	// began before the cut asks RMS, which (the cut being a pretence)
	// answers.
	settle(t, s, 1)
	w.setNode("n1", protocol.NodeUp)
	settle(t, s, 3)
	if _, ok := activeFor(s, n1); !ok {
		t.Fatal("node_down cleared while RMS could not be asked")
	}
	cb.down.Store(false)
	testkit.AwaitWithin(t, 20*time.Second, "both cleared", func() bool { return len(s.Active()) == 0 })
}

// A host seen once that stops reporting is down; its stopped plugin's
// alarm stays until it reports again.
func TestHostDown(t *testing.T) {
	w := newWorld(t)
	var (
		mu       sync.Mutex
		statuses []host.HostStatus
		starting = true
	)
	set := func(st ...host.HostStatus) { mu.Lock(); statuses = st; starting = false; mu.Unlock() }
	hosts := func(context.Context) ([]host.HostStatus, bool) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(statuses), !starting
	}
	a := host.HostStatus{Host: "a", Running: true}
	b := host.HostStatus{Host: "b", Running: true, Plugins: []host.PluginStatus{{ID: "convene.rms", State: host.StateStopped}}}
	s := w.start(Options{}, nil, func(d *Deps) { d.Hosts = hosts })
	settle(t, s, 2)
	set(a, b)
	pk := Key{apiclient.AlarmPluginStopped, "b/convene.rms"}
	hk := Key{apiclient.AlarmHostDown, "b"}
	testkit.AwaitWithin(t, 20*time.Second, "plugin_stopped raised", func() bool { _, ok := activeFor(s, pk); return ok })
	set(a)
	testkit.AwaitWithin(t, 20*time.Second, "host_down raised", func() bool { _, ok := activeFor(s, hk); return ok })
	settle(t, s, 3)
	if _, ok := activeFor(s, pk); !ok {
		t.Fatal("the plugin alarm of a silent host cleared")
	}
	b.Plugins[0].State = host.StateRunning
	set(a, b)
	testkit.AwaitWithin(t, 20*time.Second, "both cleared", func() bool { return len(s.Active()) == 0 })
	if r := w.events(apiclient.AlarmRaised, hk); r != 1 {
		t.Fatalf("host_down raised %d times", r)
	}

	// b stops on purpose, its plugin stopped first: its last word says
	// so, its plugin's alarm clears, and it is not down.
	b.Plugins[0].State = host.StateStopped
	set(a, b)
	testkit.AwaitWithin(t, 20*time.Second, "plugin_stopped raised again", func() bool { _, ok := activeFor(s, pk); return ok })
	b.Running = false
	set(a, b)
	testkit.AwaitWithin(t, 20*time.Second, "the stopped host's alarms cleared", func() bool { return len(s.Active()) == 0 })
	set(a)
	settle(t, s, 3)
	if r := w.events(apiclient.AlarmRaised, hk); r != 1 || len(s.Active()) != 0 {
		t.Fatalf("after a planned stop host_down raised %d times in all, active %v", r, s.Active())
	}
}

// Writes whose replies are lost are sent again: one alarm is stored,
// raised and cleared at the times the service gave.
func TestLostRepliesWriteOnce(t *testing.T) {
	w := newWorld(t)
	s := w.start(Options{}, w.recs)
	settle(t, s, 1)
	w.recs.lose.Store(2)
	w.setNode("n1", protocol.NodeDown)
	testkit.AwaitWithin(t, 20*time.Second, "written", func() bool { return w.recs.lose.Load() == 0 && len(stored(t, w.recs.DB, n1)) == 1 })
	a, _ := activeFor(s, n1)
	w.recs.lose.Store(2)
	w.setNode("n1", protocol.NodeUp)
	testkit.AwaitWithin(t, 20*time.Second, "clear written", func() bool {
		l := stored(t, w.recs.DB, n1)
		return w.recs.lose.Load() == 0 && len(l) == 1 && !l[0].Active()
	})
	hist := s.History(context.Background())
	l := stored(t, w.recs.DB, n1)
	if len(hist) != 1 || l[0].ID != a.ID || !l[0].RaisedAt.Equal(a.RaisedAt) || hist[0].ClearedAt == nil || !l[0].ClearedAt.Equal(*hist[0].ClearedAt) {
		t.Fatalf("stored %+v, history %+v, alarm %+v", l, hist, a)
	}
}
