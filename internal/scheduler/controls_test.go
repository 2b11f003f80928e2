package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// fakeFinder answers where conferences run as a test says, and counts the
// reads.
type fakeFinder struct {
	// holder and real: the store that holds the conference and the
	// platform that runs it by that store; unreadable when it cannot be
	// read.
	holder, real string
	unreadable   bool
	// own: what this platform's store says ("" and ownFound false when it
	// does not hold it).
	own      string
	ownFound bool
	ownErr   error
	reads    int
}

func (f *fakeFinder) runsOn(_ context.Context, _, home string) (holder, real string, ok bool) {
	f.reads++
	if f.holder == "" {
		return "", "", false
	}
	return f.holder, f.real, !f.unreadable
}

func (f *fakeFinder) ownRunsOn(context.Context, string) (string, bool, error) {
	f.reads++
	return f.own, f.ownFound, f.ownErr
}

// handled records the messages the control handler was given.
type handled struct {
	mu   sync.Mutex
	msgs []*bus.Msg
}

func (h *handled) ServeMsg(_ context.Context, m *bus.Msg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, m)
}

func (h *handled) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.msgs)
}

// testControls is the control of platform p1, master of nothing, backing
// up pa and pb, active.
func testControls(f confFinder, backups bool) (*controls, *handled) {
	h := &handled{}
	c := newControls("p1", []string{"pa", "pb"}, backups, nil, f, h, slog.New(slog.DiscardHandler))
	c.on = true
	return c, h
}

// Who answers a message on mau.cmcmu.<e164>: the scheduler running the
// conference; for one nobody here runs, this platform's own scheduler as
// the platform queue, unless its store says a backup runs it; a notice
// only where the conference runs.
func TestControlDispatch(t *testing.T) {
	const num = "5100001"
	tests := []struct {
		name    string
		on      string // the bus the message came on
		home    string // the set's entry: "-" not controlled, "" home not known
		notice  bool   // no reply wanted
		subject string // default: num's control subject
		backups bool
		find    fakeFinder
		want    verdict
		// after: the set's entry afterwards ("-": not controlled).
		after string
	}{
		{name: "runs here", on: "p1", home: "p1", find: fakeFinder{holder: "p1", real: "p1"}, want: runsHere, after: "p1"},
		{name: "runs here, a notice", on: "p1", home: "p1", notice: true, find: fakeFinder{holder: "p1", real: "p1"}, want: runsHere, after: "p1"},
		{name: "runs here, the store unreadable", on: "p1", home: "p1", find: fakeFinder{holder: "p1", unreadable: true}, want: runsHere, after: "p1"},
		{name: "runs here, in no store any more", on: "p1", home: "p1", find: fakeFinder{}, want: runsHere, after: "p1"},
		{name: "runs here, no platform recorded", on: "p1", home: "p1", find: fakeFinder{holder: "p1"}, want: runsHere, after: "p1"},
		{name: "a master's conference on the master's bus", on: "pa", home: "pa", find: fakeFinder{holder: "pa", real: "p1"}, want: runsHere, after: "pa"},
		{name: "a master's conference on this platform's bus", on: "p1", home: "pa", find: fakeFinder{holder: "pa", real: "p1"}, want: runsHere, after: "pa"},
		{name: "a master's conference on another master's bus", on: "pb", home: "pa", want: leave, after: "pa"},
		{name: "its store learned on the way", on: "p1", home: "", find: fakeFinder{holder: "pa", real: "p1"}, want: runsHere, after: "pa"},
		{name: "moved to a backup: let go, the backup answers", on: "p1", home: "p1",
			find: fakeFinder{holder: "p1", real: "p2", own: "p2", ownFound: true}, want: leave, after: "-"},
		{name: "moved to a backup: let go, a notice", on: "p1", home: "p1", notice: true,
			find: fakeFinder{holder: "p1", real: "p2"}, want: leave, after: "-"},
		{name: "a master's conference back on the master: let go on its bus", on: "pa", home: "pa",
			find: fakeFinder{holder: "pa", real: "pa"}, want: leave, after: "-"},
		{name: "a master's conference back on the master: let go, answered here as the queue", on: "p1", home: "pa",
			find: fakeFinder{holder: "pa", real: "pa"}, want: asQueue, after: "-"},
		{name: "not controlled, this store runs it: the queue answers", on: "p1", home: "-",
			find: fakeFinder{own: "p1", ownFound: true}, want: asQueue, after: "-"},
		{name: "not controlled, a backup runs it", on: "p1", home: "-",
			find: fakeFinder{own: "p2", ownFound: true}, want: leave, after: "-"},
		{name: "not controlled, waiting for a restore: the queue answers", on: "p1", home: "-",
			find: fakeFinder{own: "", ownFound: true}, want: asQueue, after: "-"},
		{name: "not controlled, not in the store, no backups: not found now", on: "p1", home: "-",
			find: fakeFinder{}, want: asQueue, after: "-"},
		{name: "not controlled, not in the store, with backups: not found later", on: "p1", home: "-", backups: true,
			find: fakeFinder{}, want: answerLater, after: "-"},
		{name: "not controlled, the store unreadable: the queue answers", on: "p1", home: "-", backups: true,
			find: fakeFinder{ownErr: errors.New("store down")}, want: asQueue, after: "-"},
		{name: "not controlled, a notice", on: "p1", home: "-", notice: true, want: leave, after: "-"},
		{name: "not controlled, on a master's bus", on: "pa", home: "-", want: leave, after: "-"},
		{name: "not a control subject", on: "p1", home: "p1", subject: "mau.cmmau.p1", want: leave, after: "p1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.find
			c, _ := testControls(&f, tt.backups)
			if tt.home != "-" {
				c.add(num, tt.home)
			}
			m := &bus.Msg{Subject: protocol.SubjectConfControl(num), Type: protocol.CMDelayConfReq, Reply: "_INBOX.1"}
			if tt.subject != "" {
				m.Subject = tt.subject
			}
			if tt.notice {
				m.Reply = ""
			}
			if got := c.decide(context.Background(), tt.on, m); got != tt.want {
				t.Fatalf("decided %s; want %s", got, tt.want)
			}
			after := "-"
			if c.has(num) {
				after = c.home(num)
			}
			if after != tt.after {
				t.Fatalf("control afterwards %q; want %q", after, tt.after)
			}
		})
	}
}

// The handler gets what this instance answers, now or, for "no such
// conference" on a platform with backups, a moment later; nothing else.
func TestControlServe(t *testing.T) {
	for _, tt := range []struct {
		name    string
		find    fakeFinder
		backups bool
		now     int // handled at once
		later   int // handled once the defer passed
	}{
		{"answered at once", fakeFinder{own: "p1", ownFound: true}, false, 1, 1},
		{"left to a backup", fakeFinder{own: "p2", ownFound: true}, false, 0, 0},
		{"not found, answered after the backups had their say", fakeFinder{}, true, 0, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.find
			c, h := testControls(&f, tt.backups)
			var deferred []func()
			c.later = func(d time.Duration, fn func()) {
				if d != notFoundDefer {
					t.Errorf("deferred for %v; want %v", d, notFoundDefer)
				}
				deferred = append(deferred, fn)
			}
			c.serve(context.Background(), "p1", &bus.Msg{Subject: protocol.SubjectConfControl("5100001"), Type: protocol.CMDelayConfReq, Reply: "_INBOX.1"})
			if got := h.count(); got != tt.now {
				t.Fatalf("handled %d at once; want %d", got, tt.now)
			}
			for _, fn := range deferred {
				fn()
			}
			if got := h.count(); got != tt.later {
				t.Fatalf("handled %d once the defer passed; want %d", got, tt.later)
			}
		})
	}
}

// The set: taken only while active; emptied when standing down; a
// platform switched over lets go of its own conferences and keeps its
// masters'; the end notices told are forgotten with the control.
func TestControlBookkeeping(t *testing.T) {
	c, _ := testControls(&fakeFinder{}, false)
	c.add("51001", "p1")
	c.add("51002", "pa")
	c.add("51003", "")
	c.add("51004", "nowhere")
	if c.toldEnd("51001", 100) || !c.toldEnd("51001", 100) || c.toldEnd("51001", 200) {
		t.Fatal("an end notice counted as told before it was, or not after")
	}
	c.toldEnd("51002", 100)
	if got := c.missing([]string{"51001", "51005", "51002", "51006"}); len(got) != 2 || got[0] != "51005" || got[1] != "51006" {
		t.Fatalf("missing %v; want [51005 51006]", got)
	}
	c.learn("51003", "pb")
	c.learn("51009", "pb") // not controlled: nothing kept
	if c.home("51003") != "pb" || c.has("51009") {
		t.Fatalf("learned homes: 51003 %q, 51009 kept %v", c.home("51003"), c.has("51009"))
	}
	c.dropOwn()
	for e, want := range map[string]bool{"51001": false, "51002": true, "51003": true, "51004": false} {
		if c.has(e) != want {
			t.Fatalf("after switching over, %s controlled %v; want %v", e, c.has(e), want)
		}
	}
	if !c.toldEnd("51002", 100) || c.toldEnd("51001", 200) {
		t.Fatal("the end notices told were not kept and forgotten with their control")
	}
	c.drop("51002")
	if c.has("51002") || c.toldEnd("51002", 100) {
		t.Fatal("a dropped conference kept its control or its end notice")
	}
	c.on = false
	c.add("51007", "p1")
	if c.has("51007") {
		t.Fatal("control taken while standing by")
	}
}
