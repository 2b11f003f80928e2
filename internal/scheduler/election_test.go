package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/store"
)

// fakeLeases answers the lease script with what a test scripts, in turn.
type fakeLeases struct {
	mu       sync.Mutex
	answers  []error
	acquires int
	released []string // holders
}

func (f *fakeLeases) AcquireLease(_ context.Context, platform, holder string, ttl time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acquires++
	if len(f.answers) == 0 {
		return errors.New("no answer scripted")
	}
	err := f.answers[0]
	f.answers = f.answers[1:]
	return err
}

func (f *fakeLeases) ReleaseLease(_ context.Context, platform, holder string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, holder)
	return nil
}

// fakeCandidate counts what the election made of it.
type fakeCandidate struct {
	failNext    error
	active      bool
	activations int
	standDowns  int
}

func (c *fakeCandidate) activate(context.Context) error {
	if err := c.failNext; err != nil {
		c.failNext = nil
		return err
	}
	c.active = true
	c.activations++
	return nil
}

func (c *fakeCandidate) deactivate() {
	c.active = false
	c.standDowns++
}

func (f *fakeLeases) releases() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.released...)
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ at time.Time }

func (c *fakeClock) now() time.Time          { return c.at }
func (c *fakeClock) advance(d time.Duration) { c.at = c.at.Add(d) }

func heldBy(holder string) error { return fmt.Errorf("%w: %s", store.ErrLeaseHeld, holder) }

// testElection is the election of instance css-a of platform p1, on a
// clock the test moves.
func testElection(st leaseStore, c candidate) (*election, *fakeClock) {
	e := newElection(st, c, Options{Platform: "p1", ID: "css-a", LeaseTTL: 1500 * time.Millisecond, LeaseRenew: 200 * time.Millisecond}, slog.New(slog.DiscardHandler))
	clock := &fakeClock{at: time.Now()}
	e.now, e.epoch = clock.now, clock.now()
	return e, clock
}

var errStoreDown = errors.New("store: connection refused")

// The election, step by step: the first step joins (Start), each next one
// is a renewal round. Time moves only by the steps' advance.
func TestElection(t *testing.T) {
	const ttl = 1500 * time.Millisecond // testElection's
	type step struct {
		advance     time.Duration // the clock moves first
		answer      error         // the store's answer to this step's acquire
		activateErr error         // the candidate refuses to become active
		// notHeldBefore: after the clock moved and before the round, the
		// lease must not count as held (a pause past it).
		notHeldBefore bool
		wantActive    bool
		wantHeld      bool
	}
	tests := []struct {
		name        string
		steps       []step
		joinErr     bool
		activations int
		standDowns  int
		releases    int
	}{
		{name: "a free lease: active at once",
			steps:       []step{{answer: nil, wantActive: true, wantHeld: true}},
			activations: 1},
		{name: "a lease held by another: standing by",
			steps: []step{{answer: heldBy("css-b"), wantActive: false, wantHeld: false}}},
		{name: "a store that fails at start: an error, nothing runs",
			steps:   []step{{answer: errStoreDown}},
			joinErr: true},
		{name: "an activation that fails at start frees the lease",
			steps:    []step{{answer: nil, activateErr: errors.New("subscribe failed"), wantHeld: false}},
			joinErr:  true,
			releases: 1},
		{name: "renewed: stays active, activated once",
			steps: []step{
				{answer: nil, wantActive: true, wantHeld: true},
				{advance: 200 * time.Millisecond, answer: nil, wantActive: true, wantHeld: true},
				{advance: 200 * time.Millisecond, answer: nil, wantActive: true, wantHeld: true},
			},
			activations: 1},
		{name: "lost to another: stands down",
			steps: []step{
				{answer: nil, wantActive: true, wantHeld: true},
				{advance: 200 * time.Millisecond, answer: heldBy("css-b"), wantActive: false, wantHeld: true},
				{advance: 200 * time.Millisecond, answer: heldBy("css-b"), wantActive: false, wantHeld: true},
			},
			activations: 1, standDowns: 1},
		{name: "regained after it was lost: active again",
			steps: []step{
				{answer: nil, wantActive: true, wantHeld: true},
				{advance: 200 * time.Millisecond, answer: heldBy("css-b"), wantActive: false, wantHeld: true},
				{advance: 2 * ttl, answer: heldBy("css-b"), wantActive: false, wantHeld: false},
				{advance: 200 * time.Millisecond, answer: nil, wantActive: true, wantHeld: true},
			},
			activations: 2, standDowns: 1},
		{name: "a standby takes the lease once it is free",
			steps: []step{
				{answer: heldBy("css-b"), wantActive: false},
				{advance: 200 * time.Millisecond, answer: heldBy("css-b"), wantActive: false},
				{advance: 200 * time.Millisecond, answer: nil, wantActive: true, wantHeld: true},
			},
			activations: 1},
		{name: "a failed activation on taking the lease frees it and tries again",
			steps: []step{
				{answer: heldBy("css-b"), wantActive: false},
				{advance: 200 * time.Millisecond, answer: nil, activateErr: errors.New("subscribe failed"), wantActive: false, wantHeld: false},
				{advance: 200 * time.Millisecond, answer: nil, wantActive: true, wantHeld: true},
			},
			activations: 1, releases: 1},
		{name: "the store silent for less than a term: still active",
			steps: []step{
				{answer: nil, wantActive: true, wantHeld: true},
				{advance: ttl / 2, answer: errStoreDown, wantActive: true, wantHeld: true},
				{advance: ttl / 4, answer: errStoreDown, wantActive: true, wantHeld: true},
			},
			activations: 1},
		{name: "the store silent for a whole term: stands down",
			steps: []step{
				{answer: nil, wantActive: true, wantHeld: true},
				{advance: ttl / 2, answer: errStoreDown, wantActive: true, wantHeld: true},
				{advance: ttl, answer: errStoreDown, wantActive: false, wantHeld: false},
			},
			activations: 1, standDowns: 1},
		{name: "paused past its lease: not held until renewed",
			steps: []step{
				{answer: nil, wantActive: true, wantHeld: true},
				// The process stops for longer than the lease; when it
				// runs again, before its next round, the lease is not
				// its own by its clock.
				{advance: ttl + time.Millisecond, notHeldBefore: true, answer: heldBy("css-b"), wantActive: false, wantHeld: false},
			},
			activations: 1, standDowns: 1},
		{name: "paused past its lease, still free: held again once renewed",
			steps: []step{
				{answer: nil, wantActive: true, wantHeld: true},
				{advance: ttl + time.Millisecond, notHeldBefore: true, answer: nil, wantActive: true, wantHeld: true},
			},
			activations: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeLeases{}
			for _, s := range tt.steps {
				st.answers = append(st.answers, s.answer)
			}
			c := &fakeCandidate{}
			e, clock := testElection(st, c)
			for i, s := range tt.steps {
				clock.advance(s.advance)
				if s.notHeldBefore && e.held() {
					t.Fatalf("step %d: the lease counts as held %v after it was last renewed", i, s.advance)
				}
				c.failNext = s.activateErr
				if i == 0 {
					// Start's try; the test runs the rounds itself.
					err := e.enter(context.Background())
					if (err != nil) != tt.joinErr {
						t.Fatalf("start: %v; want an error: %v", err, tt.joinErr)
					}
				} else {
					e.round(context.Background())
				}
				if c.active != s.wantActive {
					t.Fatalf("step %d: active %v; want %v", i, c.active, s.wantActive)
				}
				if got := e.held(); got != s.wantHeld {
					t.Fatalf("step %d: lease held %v by its own clock; want %v", i, got, s.wantHeld)
				}
			}
			if c.activations != tt.activations || c.standDowns != tt.standDowns {
				t.Fatalf("activated %d times, stood down %d; want %d and %d", c.activations, c.standDowns, tt.activations, tt.standDowns)
			}
			if got := len(st.releases()); got != tt.releases {
				t.Fatalf("the lease was released %d times; want %d", got, tt.releases)
			}
		})
	}
}

// Shutdown frees the lease under this instance's name, so a standby takes
// over at once; Kill leaves it to run out.
func TestElectionReleaseOnShutdown(t *testing.T) {
	for _, tt := range []struct {
		name     string
		shutdown bool
		want     []string
	}{
		{"shutdown frees the lease", true, []string{"css-a"}},
		{"a crash leaves it to run out", false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeLeases{answers: []error{nil}}
			e, _ := testElection(st, &fakeCandidate{})
			if err := e.join(context.Background()); err != nil {
				t.Fatal(err)
			}
			e.stop()
			e.stop() // twice, as Kill after Shutdown does
			if tt.shutdown {
				if err := e.release(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if got := st.releases(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("released by %v; want %v", got, tt.want)
			}
			if tt.shutdown && e.held() {
				t.Fatal("the lease counts as held after it was freed")
			}
		})
	}
}
