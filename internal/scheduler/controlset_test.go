package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

func TestControlSet(t *testing.T) {
	p := newPlatforms("pb", []string{"pa", "pc", "pb", ""})
	if got := p.names; len(got) != 4 || got[1] != "pb" || got[2] != "pa" || got[3] != "pc" {
		t.Fatalf("platforms numbered %q; want this one first, then each master once", got)
	}
	if p.of("pa") != 2 || p.name(2) != "pa" || p.of("nowhere") != 0 || p.name(0) != "" || p.name(200) != "" {
		t.Fatalf("index: pa=%d name(2)=%q nowhere=%d", p.of("pa"), p.name(2), p.of("nowhere"))
	}

	tests := []struct {
		name  string
		adds  []uint8 // homes given in turn for one number
		wantH uint8
	}{
		{"one add", []uint8{2}, 2},
		{"home not known", []uint8{0}, 0},
		{"a home learned later", []uint8{0, 3}, 3},
		{"an unknown home keeps the known one", []uint8{2, 0}, 2},
		{"a new home replaces the old", []uint8{2, 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := controlSet{}
			for _, h := range tt.adds {
				c.add("5100001", h)
			}
			if h, ok := c["5100001"]; !ok || h != tt.wantH || len(c) != 1 {
				t.Fatalf("set %v; want 5100001 with home %d", c, tt.wantH)
			}
		})
	}

	// The key is a copy: a number cut from a message's subject does not
	// keep the message alive.
	subject := protocol.SubjectConfControl("5100002")
	e164, _ := strings.CutPrefix(subject, protocol.SubjectConfControl(""))
	c := controlSet{}
	c.add(e164, 1)
	for k := range c {
		if unsafe.StringData(k) == unsafe.StringData(e164) {
			t.Fatal("the set holds the caller's string, and with it the subject it was cut from")
		}
	}
}

type controlEnv struct {
	s   *Scheduler
	st  *store.Store
	emb *bus.Embedded
	cm  *bus.Bus // the CM's connection
	// told collects what the node n1 is sent.
	mu   sync.Mutex
	told []string
}

// startControl runs an active scheduler of platform p1 (a backup of
// nothing, with p2 as its backup) on an embedded bus and a redis-server,
// with a listener in place of node n1.
func startControl(t *testing.T) *controlEnv {
	t.Helper()
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = 100
	}
	cfg := &config.Config{
		Platforms: []config.Platform{
			{Moid: "p1", NumberSegment: "51", Rooms: []config.Room{{Moid: "r1", Type: "main"}}, Backups: []string{"p2"}},
			{Moid: "p2", NumberSegment: "52", Rooms: []config.Room{{Moid: "r2", Type: "main"}}},
		},
		Domains: []config.Domain{{Moid: "acme", Platform: "p1", License: limits}},
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	emb := testkit.BusServer(t, bus.EmbeddedOptions{NoListen: true})
	connect := func(name string) *bus.Bus {
		return testkit.Dial(t, bus.Options{Embedded: emb, Name: name, RequestTimeout: 5 * time.Second})
	}
	st := testkit.Store(t, testkit.RedisServer)
	e := &controlEnv{st: st, emb: emb, cm: connect("cm")}
	node := connect("n1")
	if _, err := node.Subscribe(protocol.SubjectToNode("n1"), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var c struct {
			E164     string `json:"e164"`
			ConfE164 string `json:"confE164"`
		}
		_ = m.Decode(&c)
		e.mu.Lock()
		e.told = append(e.told, m.Type+" "+c.E164+c.ConfE164)
		e.mu.Unlock()
	})); err != nil {
		t.Fatal(err)
	}
	if err := node.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{
		Platform: "p1", NodeTimeout: 300 * time.Millisecond, RMSTimeout: 300 * time.Millisecond,
		// No node reports: the grace would move what the test sets up.
		StartGrace: time.Minute, EndCheckInterval: time.Minute,
	}, Deps{Bus: connect("scheduler"), Store: st, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	e.s = s
	return e
}

// running writes a conference of p1 running on node n1 on platform real.
func (e *controlEnv) running(t *testing.T, num, real string) {
	t.Helper()
	ctx := context.Background()
	class, _ := license.ClassOf(8, "720p")
	if _, err := e.st.Reserve(ctx, store.Reservation{
		Conf: protocol.Conference{E164: num, Name: "c" + num, Domain: "acme", Platform: "p1", RealPlatform: real,
			Scale: 8, Resolution: "720p", DurationMinutes: 60, EndTime: time.Now().Add(time.Hour).UnixMilli()},
		Class:     class,
		Numbering: store.Numbering{Platform: "p1", Segment: "51", Digits: 5},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Commit(ctx, store.Placement{E164: num, Node: "n1", IP: "10.0.0.1", PID: "1", Room: "r1", RealPlatform: real}); err != nil {
		t.Fatal(err)
	}
}

// delay asks for 10 more minutes of num on its control subject and
// reports the answer.
func (e *controlEnv) delay(num string, wait time.Duration) (protocol.ConfDurationNtf, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var ack protocol.ConfDurationNtf
	err := e.cm.Call(ctx, protocol.SubjectConfControl(num), protocol.DelayConfReq{Type: protocol.CMDelayConfReq, E164: num, Minutes: 10}, &ack)
	return ack, err
}

func (e *controlEnv) minutes(t *testing.T, num string) int {
	t.Helper()
	c, err := e.st.Conference(context.Background(), num)
	if err != nil {
		t.Fatal(err)
	}
	return c.DurationMinutes
}

func (e *controlEnv) toldNode(what string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, s := range e.told {
		if s == what {
			n++
		}
	}
	return n
}

// The control of every running conference costs the bus one subscription
// however many conferences run.
func TestControlTakesOneSubscriptionPerBus(t *testing.T) {
	e := startControl(t)
	ctx := context.Background()
	before := e.emb.Subscriptions()
	var nums []string
	for i := range 50 {
		num := fmt.Sprintf("51%05d", i)
		nums = append(nums, num)
		e.s.ctl.add(num, "p1")
	}
	if err := e.s.bus.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if after := e.emb.Subscriptions(); after != before {
		t.Fatalf("the bus went from %d to %d subscriptions for 50 conferences", before, after)
	}
	for _, num := range nums {
		if !e.s.Controlled(num) {
			t.Fatalf("%s is not controlled", num)
		}
	}
}

// A request on a conference's control subject is answered by this
// scheduler as the platform queue would, when it runs the conference or
// nobody runs it (the CM no longer needs to find nobody listening first),
// and not when another platform runs it: that platform's scheduler
// answers, and the request is applied once.
func TestControlRequestsAreAnsweredByTheSchedulerRunningTheConference(t *testing.T) {
	e := startControl(t)
	e.running(t, "5100001", "p1") // created after the scheduler started: not in its set
	e.running(t, "5100002", "p2") // moved to the backup platform p2
	e.s.ctl.add("5100003", "p1")
	e.running(t, "5100003", "p1")

	for _, num := range []string{"5100001", "5100003"} {
		ack, err := e.delay(num, 5*time.Second)
		if err != nil || ack.Type != protocol.MAUDelayConfAck || ack.DurationMinutes != 70 {
			t.Fatalf("delay of %s: %+v, %v", num, ack, err)
		}
		if got := e.minutes(t, num); got != 70 {
			t.Fatalf("%s lasts %d minutes after one 10-minute delay of 60", num, got)
		}
	}
	// Nobody runs it and nobody ever did: the platform answers.
	var ne *bus.NackError
	if _, err := e.delay("5199999", 5*time.Second); !errors.As(err, &ne) || ne.Code != protocol.ErrConfNotFound {
		t.Fatalf("delay of an unknown conference: %v", err)
	}
	// Answering for a conference it does not run takes nothing on.
	if e.s.Controlled("5100001") || e.s.Controlled("5199999") {
		t.Fatal("answering as the platform queue took a conference's control")
	}
	// p2 runs it: this scheduler stays silent and changes nothing.
	if _, err := e.delay("5100002", time.Second); !errors.Is(err, bus.ErrTimeout) {
		t.Fatalf("delay of a conference p2 runs: %v; want no answer from p1", err)
	}
	if got := e.minutes(t, "5100002"); got != 60 {
		t.Fatalf("p1 delayed a conference p2 runs: %d minutes", got)
	}
}

// A conference this scheduler controls but that another platform runs
// now (it moved while this one held it) is let go at its first request,
// which this scheduler leaves to the platform running it.
func TestControlOfAConferenceThatMovedIsLetGo(t *testing.T) {
	e := startControl(t)
	e.s.ctl.add("5100004", "p1")
	e.running(t, "5100004", "p2")
	if _, err := e.delay("5100004", time.Second); !errors.Is(err, bus.ErrTimeout) {
		t.Fatalf("delay of a conference that moved to p2: %v; want no answer from p1", err)
	}
	if e.s.Controlled("5100004") {
		t.Fatal("p1 still controls a conference p2 runs")
	}
	if got := e.minutes(t, "5100004"); got != 60 {
		t.Fatalf("p1 delayed a conference p2 runs: %d minutes", got)
	}
}

// A notice on a control subject (the CM's answer to a node's rename) is
// for the scheduler running the conference only: one that does not run it
// does not pass it to the node, even as the platform queue.
func TestControlNoticeOnlyReachesTheRunningConference(t *testing.T) {
	e := startControl(t)
	e.running(t, "5100005", "p1") // not in the set
	e.s.ctl.add("5100006", "p1")
	e.running(t, "5100006", "p1")
	for _, num := range []string{"5100005", "5100006"} {
		if err := e.cm.Publish(protocol.SubjectConfControl(num), protocol.ModifyConfNameReq{Type: protocol.CMMCUModifyConfNameAck, E164: num, Name: "renamed"}); err != nil {
			t.Fatal(err)
		}
	}
	// A request on the same subject is handled after the notice.
	if _, err := e.delay("5100005", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() error {
		if e.toldNode(protocol.CMMCUModifyConfNameAck+" 5100006") == 0 {
			return errors.New("the node running 5100006 was not given the CM's answer")
		}
		return nil
	})
	if n := e.toldNode(protocol.CMMCUModifyConfNameAck + " 5100005"); n != 0 {
		t.Fatalf("the CM's answer for a conference this scheduler does not run reached the node %d times", n)
	}
}
