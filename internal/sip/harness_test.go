package sip

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/resources"
	"github.com/convene/convene/internal/sip/digest"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

const (
	testDomain   = "sip.convene.test"
	testPlatform = "p1"
)

// memRecorder keeps what the nodes report, as the call-record service
// would, and lets a test check that every call has one record.
type memRecorder struct {
	mu       sync.Mutex
	started  map[string][]CallEvent
	answered map[string][]CallEvent
	ended    map[string][]CallEvent
	logs     map[string][]LogLine
	// lose: ends are never written, as when the node's process dies
	// before its recorder writes them.
	lose bool
}

func newRecorder() *memRecorder {
	return &memRecorder{started: map[string][]CallEvent{}, answered: map[string][]CallEvent{},
		ended: map[string][]CallEvent{}, logs: map[string][]LogLine{}}
}

func (r *memRecorder) CallStarted(_ context.Context, c CallEvent) {
	r.mu.Lock()
	r.started[c.CallID] = append(r.started[c.CallID], c)
	r.mu.Unlock()
}

func (r *memRecorder) CallAnswered(_ context.Context, c CallEvent) {
	r.mu.Lock()
	r.answered[c.CallID] = append(r.answered[c.CallID], c)
	r.mu.Unlock()
}

func (r *memRecorder) CallEnded(_ context.Context, c CallEvent, written func()) {
	r.mu.Lock()
	r.ended[c.CallID] = append(r.ended[c.CallID], c)
	lose := r.lose
	r.mu.Unlock()
	if !lose {
		written()
	}
}

func (r *memRecorder) Log(_ context.Context, id string, l LogLine) {
	r.mu.Lock()
	r.logs[id] = append(r.logs[id], l)
	r.mu.Unlock()
}

// end returns the one end reported for call id, failing when there are
// several; ok is false while there is none.
func (r *memRecorder) end(t testing.TB, id string) (CallEvent, bool) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e := r.ended[id]; len(e) {
	case 0:
		return CallEvent{}, false
	case 1:
		return e[0], true
	default:
		t.Fatalf("call %s ended %d times: %+v", id, len(e), e)
		return CallEvent{}, false
	}
}

// waitEnd waits for the one end of call id.
func (r *memRecorder) waitEnd(t testing.TB, id string) CallEvent {
	t.Helper()
	var ev CallEvent
	testkit.AwaitWithin(t, 15*time.Second, "the end of call "+id, func() bool {
		var ok bool
		ev, ok = r.end(t, id)
		return ok
	})
	return ev
}

// callIDs lists the calls started, sorted.
func (r *memRecorder) callIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id := range r.started {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// check fails unless every started call was started once and ended once,
// and nothing ended that did not start.
func (r *memRecorder) check(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, s := range r.started {
		if len(s) != 1 {
			t.Errorf("call %s started %d times", id, len(s))
		}
		if len(r.ended[id]) != 1 {
			t.Errorf("call %s ended %d times: %+v", id, len(r.ended[id]), r.ended[id])
		}
		if len(r.answered[id]) > 1 {
			t.Errorf("call %s answered %d times", id, len(r.answered[id]))
		}
	}
	for id := range r.ended {
		if len(r.started[id]) == 0 {
			t.Errorf("call %s ended without a start", id)
		}
	}
}

func (r *memRecorder) logText(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, l := range r.logs[id] {
		fmt.Fprintf(&b, "%s %s %s %s\n", l.Node, l.Dir, l.Peer, l.Text)
	}
	return b.String()
}

// env is one platform with two SIP nodes (A and B, the two datacenters)
// sharing its store, subscribers in a records database, and simulated
// media nodes that answer SIP.
type env struct {
	t    *testing.T
	st   *stack.Stack
	db   *records.DB
	rec  *memRecorder
	a, b *Node
	sims []*medianode.Node
	simB []*bus.Bus
	log  *slog.Logger
}

// setup says how to start an env.
type setup struct {
	sims int // simulated media nodes with a SIP listener
	// recA, when set, is node A's recorder instead of the env's.
	recA *memRecorder
	tune func(*Options)
}

func testConfig() *config.Config {
	all := license.Limits{}
	for _, c := range license.All() {
		all[c.String()] = 1000
	}
	c := &config.Config{
		Platforms: []config.Platform{{Moid: testPlatform, Name: "Platform one", NumberSegment: "51",
			Rooms: []config.Room{{Moid: "r1", Type: "main"}, {Moid: "r2", Type: "secondary"}}}},
		Domains: []config.Domain{{Moid: "acme", Platform: testPlatform, License: all}},
		Scheduler: config.Scheduler{
			NodeTimeout: 1500 * time.Millisecond, RMSTimeout: 3 * time.Second,
			LeaseTTL: 2 * time.Second, LeaseRenew: 100 * time.Millisecond,
			RestoreInterval: 200 * time.Millisecond, RestoreBackoff: 50 * time.Millisecond,
			StartGrace: time.Second, SweepInterval: time.Second,
		},
		RMS: config.RMS{HeartbeatInterval: 100 * time.Millisecond, MissedHeartbeats: 8,
			ConfListInterval: 500 * time.Millisecond, DisconnectGrace: 250 * time.Millisecond},
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("SIP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func start(t *testing.T, s setup) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, rec: newRecorder(), log: testLog(t)}
	st, err := stack.Start(ctx, stack.Options{Config: testConfig(), Listen: "127.0.0.1:0", Log: e.log})
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st.Stop(c)
	})
	e.db, err = records.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "records.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.db.Close() })
	for i := range s.sims {
		e.addSim(i + 1)
	}
	recA := e.rec
	if s.recA != nil {
		recA = s.recA
	}
	e.a = e.node("sip-a", s.tune, recA)
	e.b = e.node("sip-b", s.tune, e.rec)
	if s.sims > 0 {
		testkit.AwaitWithin(t, 15*time.Second, "the media nodes up with their SIP contacts", func() bool {
			up := 0
			for _, n := range st.RMS.Nodes() {
				if n.State == protocol.NodeUp && n.SIP != "" {
					up++
				}
			}
			return up == s.sims
		})
	}
	return e
}

// addSim starts simulated media node n with a SIP listener.
func (e *env) addSim(n int) *medianode.Node {
	e.t.Helper()
	cfg := e.st.Config
	local := cfg.Local()
	id := fmt.Sprintf("sim-%d", n)
	b, err := e.st.ConnectAs(bus.RoleMCU, resources.NodeConnName(id))
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := medianode.New(medianode.Options{ID: id, IP: fmt.Sprintf("127.0.1.%d", n), Room: local.Rooms[(n-1)%len(local.Rooms)].Moid,
		Platform: local.Moid, HeartbeatInterval: cfg.RMS.HeartbeatInterval, ConfListInterval: cfg.RMS.ConfListInterval,
		SIPListen: "127.0.0.1:0"}, b, e.log)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { m.Kill(); b.Close() })
	e.sims = append(e.sims, m)
	e.simB = append(e.simB, b)
	return m
}

// killSim crashes simulated node i: its process and bus connection gone.
func (e *env) killSim(i int) {
	e.sims[i].Kill()
	e.simB[i].Close()
}

// node starts a SIP node on loopback with the SIP role's bus connection.
func (e *env) node(name string, tune func(*Options), rec *memRecorder) *Node {
	e.t.Helper()
	b, err := e.st.ConnectAs(bus.RoleSIP, name)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(b.Close)
	opts := Options{Name: name, Platform: testPlatform, Domain: testDomain, UDP: "127.0.0.1:0", TCP: "127.0.0.1:0",
		SweepInterval: 50 * time.Millisecond, NodeCacheTTL: 100 * time.Millisecond,
		// Debian's sipp answers only the first challenge, and only MD5.
		Algorithms: []digest.Algorithm{digest.MD5, digest.SHA256}}
	if tune != nil {
		tune(&opts)
	}
	n, err := New(opts, Deps{Store: e.st.Store, Subscribers: e.db, Bus: b, Recorder: rec, Log: e.log.With("sip_node", name)})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	return n
}

// subscriber adds a subscriber with its password.
func (e *env) subscriber(user, password string) {
	e.t.Helper()
	s, err := NewSubscriber(user, password, testDomain)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, _, err := e.db.PutSIPSubscriber(context.Background(), s); err != nil {
		e.t.Fatal(err)
	}
}

// conference creates a conference as the CM does and returns its number
// and the node that runs it.
func (e *env) conference(name string) (e164, node string) {
	e.t.Helper()
	var ack protocol.CreateConfAck
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := e.st.Bus.Call(ctx, protocol.SubjectCMMAU(testPlatform), protocol.CreateConfReq{
		Type: protocol.CMCreateConfReq, Name: name, Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 60,
	}, &ack)
	if err != nil {
		e.t.Fatal(err)
	}
	testkit.AwaitWithin(e.t, 15*time.Second, "conference "+ack.Conf.E164+" in the registry", func() bool {
		en, ok := e.st.Registry.Lookup(ack.Conf.E164)
		return ok && en.Node != ""
	})
	return ack.Conf.E164, ack.Conf.Node
}

// simIndex is the index of the simulated node with id.
func (e *env) simIndex(id string) int {
	for i, s := range e.sims {
		if s.ID() == id {
			return i
		}
	}
	e.t.Fatalf("no simulated node %s", id)
	return -1
}

// bindings reads the contacts registered for an address of record.
func (e *env) bindings(aor string) []store.SIPBinding {
	e.t.Helper()
	b, err := e.st.Store.SIPBindings(context.Background(), aor, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}
