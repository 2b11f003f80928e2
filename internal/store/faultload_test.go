package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/faultproxy"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

// booking is what one create's caller was told, and what followed.
type booking struct {
	name     string // unique: tells its conference from any other
	domain   string
	e164     string
	end      int64 // as booked
	delayed  int   // minutes of the delays answered OK
	released bool  // an end answered OK
}

// Creates (with and without a number), commits, delays and ends run at
// once through a proxy that drops replies, resets connections and holds
// commands and replies back past the client's timeout. Afterwards the store
// holds exactly what the callers were told: each create answered OK exists
// once unless its end was answered OK, a refused one left nothing, each
// delay answered OK added its minutes once, and the licence counts equal
// the conferences of each class.
func TestConcurrentWritesThroughFaults(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	p, err := faultproxy.Start(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx := context.Background()
	// A short timeout, so that held-back replies time out and are sent
	// again while the first run may still be on its way.
	s, err := store.Open(ctx, store.Options{URL: "redis://" + p.Addr(), Timeout: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.LoadScripts(ctx); err != nil {
		t.Fatal(err)
	}
	direct := testkit.OpenStore(t, srv.URL())
	classes := map[string]license.Class{"acme": {Scale: 8, Resolution: "720p"}, "beta": {Scale: 32, Resolution: "1080p"}}
	for moid, c := range classes {
		publish(t, direct, moid, license.Limits{c.String(): 12})
	}

	const workers, rounds = 8, 10
	p.Inject(faultproxy.Fault{Command: "EVALSHA", Action: faultproxy.DropReply, Every: 5, Times: 25})
	p.Inject(faultproxy.Fault{Command: "EVALSHA", Action: faultproxy.Reset, Every: 6, Times: 10})
	p.Inject(faultproxy.Fault{Command: "EVALSHA", Action: faultproxy.DelayReply, Every: 7, Times: 3, Delay: 400 * time.Millisecond})
	p.Inject(faultproxy.Fault{Command: "EVALSHA", Action: faultproxy.DelayCommand, Every: 8, Times: 3, Delay: 400 * time.Millisecond})

	var (
		mu       sync.Mutex
		bookings []*booking
		wg       sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			domain := "acme"
			if w%2 == 1 {
				domain = "beta"
			}
			for i := range rounds {
				b := &booking{name: fmt.Sprintf("w%d-r%d", w, i), domain: domain}
				r := reservation(domain, "")
				r.Class = classes[domain]
				r.Conf.Name, r.Conf.Scale, r.Conf.Resolution = b.name, r.Class.Scale, r.Class.Resolution
				if i%2 == 0 {
					// Two workers ask for each number: one may have it.
					r.Conf.E164 = fmt.Sprintf("67%03d%02d", w/2, i)
				}
				b.end = r.Conf.EndTime
				if !book(t, s, r, b) {
					continue
				}
				mu.Lock()
				bookings = append(bookings, b)
				mu.Unlock()
				run(t, s, b, i)
			}
		}()
	}
	wg.Wait()
	for _, a := range []faultproxy.Action{faultproxy.DropReply, faultproxy.Reset, faultproxy.DelayReply, faultproxy.DelayCommand} {
		if p.Hits(a) == 0 {
			t.Errorf("no %s was injected: the load did not meet the faults", a)
		}
	}
	t.Logf("faults: %d replies dropped, %d resets, %d replies and %d commands held back; %d conferences booked",
		p.Hits(faultproxy.DropReply), p.Hits(faultproxy.Reset), p.Hits(faultproxy.DelayReply), p.Hits(faultproxy.DelayCommand), len(bookings))
	checkBookings(t, direct, bookings, classes)
}

// book reserves; it reports whether the store said yes.
func book(t *testing.T, s *store.Store, r store.Reservation, b *booking) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e164, err := s.Reserve(ctx, r)
	switch {
	case err == nil:
		b.e164 = e164
		return true
	case errors.Is(err, store.ErrLicenseExhausted), r.Conf.E164 != "" && errors.Is(err, store.ErrE164InUse):
		return false // a refusal: checkBookings finds nothing of it
	}
	t.Errorf("create %s: %v", b.name, err)
	return false
}

// run commits a booked conference, delays it i%3 times and ends every
// other one.
func run(t *testing.T, s *store.Store, b *booking, i int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Commit(ctx, store.Placement{E164: b.e164, Node: "n1", Room: "r1"}); err != nil {
		t.Errorf("commit %s (%s): %v", b.e164, b.name, err)
		return
	}
	for range i % 3 {
		_, dur, err := s.Delay(ctx, b.e164, 15)
		if err != nil {
			t.Errorf("delay %s: %v", b.e164, err)
			return
		}
		b.delayed += 15
		if dur != 60+b.delayed {
			t.Errorf("delay %s answered a length of %d minutes, want %d", b.e164, dur, 60+b.delayed)
		}
	}
	if i%4 >= 2 {
		if _, err := s.Release(ctx, b.e164, store.ReleaseCond{}); err != nil {
			t.Errorf("end %s: %v", b.e164, err)
			return
		}
		b.released = true
	}
}

// checkBookings compares the store with what the callers were told.
func checkBookings(t *testing.T, direct *store.Store, bookings []*booking, classes map[string]license.Class) {
	t.Helper()
	ctx := context.Background()
	all, err := direct.AllConferences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]protocol.Conference{}
	for _, c := range all {
		stored[c.E164] = c
	}
	want := map[string]*booking{}
	perDomain := map[string]int{}
	for _, b := range bookings {
		if b.released {
			if _, ok := stored[b.e164]; ok && stored[b.e164].Name == b.name {
				t.Errorf("%s (%s) was ended, answered OK, and is still there", b.e164, b.name)
			}
			continue
		}
		want[b.e164] = b
		perDomain[b.domain]++
		c, ok := stored[b.e164]
		switch {
		case !ok:
			t.Errorf("%s (%s) was booked, answered OK, and is gone", b.e164, b.name)
		case c.Name != b.name:
			t.Errorf("%s was booked by %s and holds %s's conference", b.e164, b.name, c.Name)
		case c.State != protocol.StateRunning:
			t.Errorf("%s is %s, want running", b.e164, c.State)
		case c.DurationMinutes != 60+b.delayed || c.EndTime != b.end+int64(b.delayed)*60000:
			t.Errorf("%s lasts %d minutes to %d; the delays answered OK make %d minutes to %d",
				b.e164, c.DurationMinutes, c.EndTime, 60+b.delayed, b.end+int64(b.delayed)*60000)
		}
	}
	for e164, c := range stored {
		if want[e164] == nil {
			t.Errorf("%s (%s, %s) is in the store, but no caller was told it exists", e164, c.Name, c.State)
		}
	}
	for moid, class := range classes {
		u, err := direct.License(ctx, moid)
		if err != nil {
			t.Fatal(err)
		}
		if u.InUse[class.String()] != perDomain[moid] {
			t.Errorf("domain %s counts %d conferences of class %s, and has %d", moid, u.InUse[class.String()], class, perDomain[moid])
		}
		states, _ := direct.DomainStates(ctx, moid)
		if len(states) != perDomain[moid] {
			t.Errorf("domain %s lists %d conferences, and has %d", moid, len(states), perDomain[moid])
		}
	}
	if n, _ := direct.NodeConferences(ctx, "n1"); len(n) != len(want) {
		t.Errorf("node n1 lists %d conferences, and has %d", len(n), len(want))
	}
	if n, _ := direct.EndingBefore(ctx, 1<<62); len(n) != len(want) {
		t.Errorf("the end-time index lists %d conferences, and there are %d", len(n), len(want))
	}
	if n, _ := direct.CreatingSince(ctx, 1<<62); len(n) != 0 {
		t.Errorf("the creating index lists %v after every create finished", n)
	}
}
