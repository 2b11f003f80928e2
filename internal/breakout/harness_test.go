package breakout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/api"
	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/testkit"
	"github.com/convene/convene/internal/testkit/stackkit"
)

const token = "breakout-token-0123456789"

// wait bounds every wait for something the system does: long enough for
// a loaded machine, never a measure of how fast it is.
const wait = 15 * time.Second

// env is a platform running in the test process (bus, store, RMS,
// scheduler, simulated media nodes) with breakout-service instances beside
// it, each on its own bus connection and behind its own API server.
type env struct {
	t      *testing.T
	st     *stack.Stack
	client *apiclient.Client
	insts  []*instance
}

// instance is one breakout-service instance and the API serving it.
type instance struct {
	svc  *breakout.Service
	bus  *bus.Bus
	http *httptest.Server
	base string
}

type setup struct {
	nodes int
	redis bool // a real redis-server instead of the embedded store
	opts  breakout.Options
	insts int
	clock func() time.Time // the services' clock; default time.Now
}

func testConfig() *config.Config {
	all := license.Limits{}
	for _, c := range license.All() {
		all[c.String()] = 1000
	}
	c := &config.Config{
		Platforms: []config.Platform{{Moid: "p1", NumberSegment: "51", Rooms: []config.Room{
			{Moid: "r1", Type: "main"}, {Moid: "r2", Type: "secondary"},
		}}},
		Domains: []config.Domain{{Moid: "acme", Platform: "p1", License: all}},
		API:     config.API{Tokens: []config.Token{{Name: "test", Token: token}}},
		// Liveness windows a loaded machine keeps (a node is down after
		// 800 ms without a beat, the scheduler's lease lasts 2 s), as in
		// the end-to-end harness.
		Scheduler: config.Scheduler{
			NodeTimeout: 1500 * time.Millisecond, RMSTimeout: 3 * time.Second,
			EndCheckInterval: 200 * time.Millisecond, LeaseTTL: 2 * time.Second, LeaseRenew: 100 * time.Millisecond,
			RestoreInterval: 200 * time.Millisecond, RestoreBackoff: 50 * time.Millisecond,
			StartGrace: 2 * time.Second, SweepInterval: time.Second,
		},
		RMS: config.RMS{HeartbeatInterval: 100 * time.Millisecond, MissedHeartbeats: 8, ConfListInterval: 500 * time.Millisecond, DisconnectGrace: 250 * time.Millisecond},
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

func start(t *testing.T, s setup) *env {
	t.Helper()
	if s.nodes == 0 {
		s.nodes = 1
	}
	if s.insts == 0 {
		s.insts = 1
	}
	o := stack.Options{Config: testConfig(), Listen: "127.0.0.1:0", NATSListen: "none", SimNodes: s.nodes}
	if s.redis {
		o.Redis = testkit.StoreURL(t, testkit.RedisServer)
	}
	st := stackkit.Start(t, o)
	e := &env{t: t, st: st, client: apiclient.New("http://"+st.API.Addr(), token)}
	t.Cleanup(func() {
		for _, in := range e.insts {
			in.stop()
		}
	})
	for range s.insts {
		e.addInstance(s.opts, s.clock)
	}
	return e
}

// addInstance starts one more breakout-service instance with its API.
func (e *env) addInstance(opts breakout.Options, clock func() time.Time) *instance {
	e.t.Helper()
	opts.Instance = fmt.Sprintf("bms-%d", len(e.insts)+1)
	b, err := e.st.Connect("breakout-" + opts.Instance)
	if err != nil {
		e.t.Fatal(err)
	}
	svc, err := breakout.New(opts, breakout.Deps{Bus: b, Store: e.st.Store})
	if err != nil {
		e.t.Fatal(err)
	}
	if clock != nil {
		svc.SetClock(clock)
	}
	if err := svc.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	srv, err := api.New(api.Options{Tokens: map[string]string{token: "test"}, Platform: "p1"},
		api.Deps{Bus: b, Store: e.st.Store, Config: e.st.Config, Routes: svc.Routes()})
	if err != nil {
		e.t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	in := &instance{svc: svc, bus: b, http: hs, base: hs.URL}
	e.insts = append(e.insts, in)
	return in
}

// stop shuts the instance down (idempotent).
func (in *instance) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = in.svc.Shutdown(ctx)
	in.http.CloseClientConnections()
	in.http.Close()
	in.bus.Close()
}

// kill crashes the instance: connections drop, nothing is cleaned up.
func (in *instance) kill() {
	in.svc.Kill()
	in.bus.Close()
	in.http.CloseClientConnections()
	in.http.Close()
}

// conference creates a running conference and returns its number.
func (e *env) conference() string {
	e.t.Helper()
	c, err := e.client.CreateConference(context.Background(), apiclient.CreateConferenceRequest{
		Name: "breakout", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 60,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c.E164
}

// node is the simulated node hosting a conference now.
func (e *env) node(e164 string) *medianode.Node {
	e.t.Helper()
	c, err := e.st.Store.Conference(context.Background(), e164)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, n := range e.st.Nodes {
		if n.ID() == c.Node {
			return n
		}
	}
	e.t.Fatalf("conference %s runs on %q, not a simulated node", e164, c.Node)
	return nil
}

// applied is what a node applied, in the plan's terms.
func applied(n *medianode.Node, e164 string) breakout.Applied {
	a := n.AudioPlan(e164)
	return breakout.Applied{Mixer: a.Mixer, CDTS: a.CDTS, CDTSSubscriptions: a.CDTSSubscriptions, MixerSubscriptions: a.MixerSubscriptions}
}

// waitPlan waits until the conference's node follows the plan derived
// from the stored state, and returns that plan.
func (e *env) waitPlan(in *instance, e164 string) (*breakout.State, *breakout.Plan) {
	e.t.Helper()
	var (
		st   *breakout.State
		p    *breakout.Plan
		last error
	)
	testkit.Eventually(e.t, wait, func() error {
		var err error
		st, p, err = in.svc.Snapshot(context.Background(), e164)
		if err != nil {
			e.t.Fatal(err)
		}
		if last = p.Check(applied(e.node(e164), e164)); last != nil {
			return fmt.Errorf("the node does not follow the plan of version %d: %w", st.Version, last)
		}
		return nil
	})
	return st, p
}

// user is a WebSocket client playing one user; a reader collects what it
// receives.
type user struct {
	t    *testing.T
	id   uint32
	ums  uint32
	c    *breakout.Client
	msgs chan breakout.Message
	done chan struct{}
	mu   sync.Mutex
	err  error // why the reader stopped
}

type who struct {
	id, ums uint32
	host    bool
	client  uint16
	audio   uint32
	compact bool // asks for the compact form of the notifications
}

// connect makes a user of a conference connect to an instance and enter
// it (BMS_CONF_INFO_REQUEST answered).
func (e *env) connect(in *instance, e164 string, w who) *user {
	e.t.Helper()
	u := e.dial(in, e164, w)
	u.send(protocol.ConfInfoRequest{Type: protocol.BMSConfInfoRequest, ConfID: e164, UserID: w.id})
	u.expect(protocol.BMSConfInfoNotify, nil)
	return u
}

func (e *env) dial(in *instance, e164 string, w who) *user {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	role := "participant"
	if w.host {
		role = "host"
	}
	tr, err := breakout.IssueTicket(ctx, http.DefaultClient, in.base, token, e164, breakout.TicketRequest{
		UserID: w.id, UserUmsID: w.ums, Role: role, ClientType: w.client, AudioState: w.audio,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	path := tr.URL
	if w.compact {
		path = breakout.CompactPath(path)
	}
	c, err := breakout.Dial(ctx, in.base, path)
	if err != nil {
		e.t.Fatal(err)
	}
	u := &user{t: e.t, id: w.id, ums: w.ums, c: c, msgs: make(chan breakout.Message, 10000), done: make(chan struct{})}
	go u.read()
	e.t.Cleanup(func() { _ = c.CloseNow() })
	return u
}

func (u *user) read() {
	defer close(u.done)
	for {
		m, err := u.c.Next(context.Background())
		if err != nil {
			u.mu.Lock()
			u.err = err
			u.mu.Unlock()
			return
		}
		u.msgs <- m
	}
}

func (u *user) send(v any) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := u.c.Send(ctx, v); err != nil {
		u.t.Fatalf("user %d: send: %v", u.id, err)
	}
}

// expect waits for the next message of a type (satisfying match when
// given), skipping others, and returns it.
func (u *user) expect(typ string, match func(breakout.Message) bool) breakout.Message {
	u.t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case m := <-u.msgs:
			if m.Type == typ && (match == nil || match(m)) {
				return m
			}
		case <-timeout:
			u.t.Fatalf("user %d: no %s within %s", u.id, typ, wait)
		}
	}
}

// next returns the next message, whatever it is.
func (u *user) next() breakout.Message {
	u.t.Helper()
	select {
	case m := <-u.msgs:
		return m
	case <-time.After(wait):
		u.t.Fatalf("user %d: no message within %s", u.id, wait)
	}
	return breakout.Message{}
}

// closed waits until the server closed the connection and returns the
// reader's error.
func (u *user) closed() error {
	u.t.Helper()
	select {
	case <-u.done:
	case <-time.After(wait):
		u.t.Fatalf("user %d: still connected after %s", u.id, wait)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func decode[T any](t *testing.T, m breakout.Message) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("%s: %v", m.Type, err)
	}
	return v
}

func status(code uint32) func(breakout.Message) bool {
	return func(m breakout.Message) bool { return m.StatusCode == code }
}

// fakeClock is a services' clock a test moves forward. It runs with real
// time, ahead by an offset, so that the beats of instances on it stay
// fresh for instances on the real clock (the stack's own).
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// to moves the clock forward until it reads at least t.
func (c *fakeClock) to(t time.Time) {
	if d := t.Sub(c.now()); d > 0 {
		c.offset.Add(int64(d))
	}
}

// rest calls the REST mirror of an instance and decodes the answer.
func rest(t *testing.T, in *instance, method, path, tok string, body, out any) (int, codes.Envelope) {
	t.Helper()
	var rd *strings.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = strings.NewReader(string(data))
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, in.base+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb codes.Envelope
	if resp.StatusCode >= 300 {
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, eb
}

// rooms builds a start's roomInfos: id → mixer mode, users by preset.
func startReq(e164 string, host uint32, rooms []protocol.BreakoutRoomInfo) protocol.BreakoutRoomsStart {
	return protocol.BreakoutRoomsStart{Type: protocol.BMSBreakoutRoomsStart, ConfID: e164, UserID: host, RoomInfos: rooms}
}

func room(id, mixer uint32, users ...protocol.BreakoutRoomUserItem) protocol.BreakoutRoomInfo {
	if users == nil {
		users = []protocol.BreakoutRoomUserItem{}
	}
	return protocol.BreakoutRoomInfo{RoomID: id, Name: fmt.Sprintf("room %d", id), MixerMode: mixer, UserItems: users}
}

func item(id, ums uint32) protocol.BreakoutRoomUserItem {
	return protocol.BreakoutRoomUserItem{UserID: id, UserUmsID: ums}
}

func move(e164 string, op, id, ums, roomID uint32) protocol.SetUserBreakoutRoom {
	return protocol.SetUserBreakoutRoom{Type: protocol.BMSSetUserBreakoutRoom, ConfID: e164, OperatorID: op,
		DestItem: protocol.BreakoutRoomUserItem{UserID: id, UserUmsID: ums, UserCurrentRoomID: roomID}}
}

func stop(e164 string, host, delay uint32) protocol.BreakoutRoomsStop {
	return protocol.BreakoutRoomsStop{Type: protocol.BMSBreakoutRoomsStop, ConfID: e164, UserID: host, DelayTime: delay}
}

type medianodeMsg = medianode.AudioMessage

func decodeRaw[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}
