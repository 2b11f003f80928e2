package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

var numbering = store.Numbering{Platform: "p1", Segment: "66", Digits: 5}

func publish(t *testing.T, s *store.Store, moid string, limits license.Limits) {
	t.Helper()
	if _, err := s.PublishDomain(context.Background(), store.DomainInfo{Moid: moid, Name: moid, Used: true}, limits); err != nil {
		t.Fatal(err)
	}
}

func reservation(moid, e164 string) store.Reservation {
	return store.Reservation{
		Conf: protocol.Conference{
			E164: e164, Name: "weekly", Domain: moid, Platform: "p1", RealPlatform: "p1",
			Scale: 8, Resolution: "720p", DurationMinutes: 60, Invited: []string{"mt1"},
			EndTime: time.Now().Add(time.Hour).UnixMilli(),
		},
		Class:     license.Class{Scale: 8, Resolution: "720p"},
		Numbering: numbering,
	}
}

func TestReserveCommitRelease(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		publish(t, s, "acme", license.Limits{"8_720p": 2})

		e164, err := s.Reserve(ctx, reservation("acme", ""))
		if err != nil {
			t.Fatal(err)
		}
		if e164 != "6600001" {
			t.Fatalf("first allocated number = %q, want 6600001", e164)
		}
		c, err := s.Conference(ctx, e164)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != protocol.StateCreating || c.Domain != "acme" || c.Name != "weekly" || len(c.Invited) != 1 {
			t.Fatalf("reserved conference = %+v", c)
		}
		if stuck, _ := s.CreatingSince(ctx, time.Now().Add(time.Minute).UnixMilli()); len(stuck) != 1 || stuck[0] != e164 {
			t.Fatalf("creating index = %v, want [%s]", stuck, e164)
		}
		if stuck, _ := s.CreatingSince(ctx, time.Now().Add(-time.Minute).UnixMilli()); len(stuck) != 0 {
			t.Fatalf("creating index before it began = %v", stuck)
		}
		if moid, err := s.Commit(ctx, store.Placement{E164: e164, Node: "n1", IP: "10.0.0.1", PID: "7", Room: "r1", RealPlatform: "p1"}); err != nil || moid != "acme" {
			t.Fatalf("Commit = %q, %v", moid, err)
		}
		c, _ = s.Conference(ctx, e164)
		if c.State != protocol.StateRunning || c.Node != "n1" || c.Room != "r1" || c.RealStartTime == 0 {
			t.Fatalf("committed conference = %+v", c)
		}
		if _, err := s.Commit(ctx, store.Placement{E164: e164, Node: "n2"}); !errors.Is(err, store.ErrStateConflict) {
			t.Fatalf("second commit err = %v, want ErrStateConflict", err)
		}
		loads, _ := s.NodeLoads(ctx, []string{"n1", "n2"})
		if loads["n1"] != 1 || loads["n2"] != 0 {
			t.Fatalf("loads = %v", loads)
		}
		u, _ := s.License(ctx, "acme")
		if u.InUse["8_720p"] != 1 {
			t.Fatalf("in use = %v", u.InUse)
		}
		if err := s.AddMonitor(ctx, e164, "10.1.1.1:5000", 1); err != nil {
			t.Fatal(err)
		}

		old, err := s.Release(ctx, e164, store.ReleaseCond{})
		if err != nil || old.E164 != e164 || old.Node != "n1" {
			t.Fatalf("Release = %+v, %v", old, err)
		}
		assertEmpty(t, s, "acme", e164, "n1")
		if _, err := s.Release(ctx, e164, store.ReleaseCond{}); !errors.Is(err, store.ErrConfNotFound) {
			t.Fatalf("second release err = %v", err)
		}
	})

}

// assertEmpty checks that nothing of a conference is left in the store.
func assertEmpty(t *testing.T, s *store.Store, moid, e164, node string) {
	t.Helper()
	ctx := context.Background()
	rdb := s.Client()
	for _, k := range []string{"confex/" + e164 + "/", "conf/" + e164 + "/monitor"} {
		if n := rdb.Exists(ctx, k).Val(); n != 0 {
			t.Errorf("key %s left behind", k)
		}
	}
	if rdb.HExists(ctx, "domain/"+moid+"/confs", e164).Val() {
		t.Errorf("domain entry of %s left behind", e164)
	}
	if node != "" && rdb.SIsMember(ctx, "node/"+node+"/confs", e164).Val() {
		t.Errorf("node entry of %s left behind", e164)
	}
	if _, err := rdb.ZScore(ctx, "confs/endtime", e164).Result(); err == nil {
		t.Errorf("end-time entry of %s left behind", e164)
	}
	if _, err := rdb.ZScore(ctx, "confs/creating", e164).Result(); err == nil {
		t.Errorf("creating-index entry of %s left behind", e164)
	}
	if n := rdb.ZCard(ctx, "confs/monitors").Val(); n != 0 {
		t.Errorf("%d monitor index entries left behind", n)
	}
}

func TestReserveRefusals(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		publish(t, s, "acme", license.Limits{"8_720p": 1})
		if _, err := s.Reserve(ctx, reservation("nobody", "")); !errors.Is(err, store.ErrDomainNotFound) {
			t.Fatalf("unknown domain err = %v", err)
		}
		if _, err := s.Reserve(ctx, reservation("acme", "555")); err != nil {
			t.Fatal(err)
		}
		var le *store.LicenseError
		if _, err := s.Reserve(ctx, reservation("acme", "556")); !errors.As(err, &le) || !errors.Is(err, store.ErrLicenseExhausted) {
			t.Fatalf("over-limit err = %v", err)
		}
		if le.InUse != 1 || le.Limit != 1 || le.Class != "8_720p" {
			t.Fatalf("licence error = %+v", le)
		}
		if s.Client().Exists(ctx, "confex/556/").Val() != 0 {
			t.Fatal("refused reservation wrote a conference")
		}
		publish(t, s, "other", license.Limits{"8_720p": 5})
		if _, err := s.Reserve(ctx, reservation("other", "555")); !errors.Is(err, store.ErrE164InUse) {
			t.Fatalf("duplicate e164 err = %v", err)
		}
		u, _ := s.License(ctx, "other")
		if u.InUse["8_720p"] != 0 {
			t.Fatalf("refused reservation counted: %v", u.InUse)
		}
	})

}

func TestConcurrentReservesNeverExceedLicence(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const limit, tries = 37, 300
		publish(t, s, "acme", license.Limits{"8_720p": limit})
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			ok, full int
			numbers  = map[string]bool{}
		)
		for i := 0; i < tries; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e164, err := s.Reserve(ctx, reservation("acme", ""))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
					if numbers[e164] {
						t.Errorf("number %s handed out twice", e164)
					}
					numbers[e164] = true
				case errors.Is(err, store.ErrLicenseExhausted):
					full++
				default:
					t.Errorf("reserve: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok != limit || full != tries-limit {
			t.Fatalf("%d reserved, %d refused; want %d and %d", ok, full, limit, tries-limit)
		}
		u, _ := s.License(ctx, "acme")
		if u.InUse["8_720p"] != limit {
			t.Fatalf("count = %d, want %d", u.InUse["8_720p"], limit)
		}
	})

}

func TestPublishDomainKeepsRuntimeLimits(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		publish(t, s, "acme", license.Limits{"8_720p": 3})
		if err := s.SetLicenseLimits(ctx, "acme", license.Limits{"8_720p": 9}); err != nil {
			t.Fatal(err)
		}
		publish(t, s, "acme", license.Limits{"8_720p": 3})
		u, _ := s.License(ctx, "acme")
		if u.Limits["8_720p"] != 9 {
			t.Fatalf("limit after restart = %d, want the run-time 9", u.Limits["8_720p"])
		}
		publish(t, s, "acme", license.Limits{"8_720p": 4})
		u, _ = s.License(ctx, "acme")
		if u.Limits["8_720p"] != 4 {
			t.Fatalf("limit after new configuration = %d, want 4", u.Limits["8_720p"])
		}
		if err := s.SetLicenseLimits(ctx, "nobody", license.Limits{"8_720p": 1}); !errors.Is(err, store.ErrDomainNotFound) {
			t.Fatalf("unknown domain err = %v", err)
		}
	})

}

func TestDelayUpdateMonitorsTemplates(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		publish(t, s, "acme", license.Limits{"8_720p": 5})
		r := reservation("acme", "777")
		if _, err := s.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Delay(ctx, "777", 30); !errors.Is(err, store.ErrStateConflict) {
			t.Fatalf("delay while creating err = %v", err)
		}
		if _, err := s.Commit(ctx, store.Placement{E164: "777", Node: "n1"}); err != nil {
			t.Fatal(err)
		}
		end, dur, err := s.Delay(ctx, "777", 30)
		if err != nil || end != r.Conf.EndTime+30*60000 || dur != 90 {
			t.Fatalf("Delay = %d, %d, %v; want %d, 90", end, dur, err, r.Conf.EndTime+30*60000)
		}
		ending, _ := s.EndingBefore(ctx, end)
		if len(ending) != 1 || ending[0] != "777" {
			t.Fatalf("EndingBefore = %v", ending)
		}
		if ending, _ := s.EndingBefore(ctx, end-1); len(ending) != 0 {
			t.Fatalf("EndingBefore(end-1) = %v", ending)
		}
		if err := s.Update(ctx, "777", "confname", "renamed"); err != nil {
			t.Fatal(err)
		}
		if err := s.Update(ctx, "778", "confname", "x"); !errors.Is(err, store.ErrConfNotFound) {
			t.Fatalf("update of missing err = %v", err)
		}
		if c, _ := s.Conference(ctx, "777"); c.Name != "renamed" {
			t.Fatalf("name = %q", c.Name)
		}

		if err := s.AddMonitor(ctx, "777", "10.0.0.9:7000", 1000); err != nil {
			t.Fatal(err)
		}
		if err := s.AddMonitor(ctx, "778", "10.0.0.9:7000", 1000); !errors.Is(err, store.ErrConfNotFound) {
			t.Fatalf("monitor of missing conference err = %v", err)
		}
		if err := s.KeepMonitorAlive(ctx, "777", "10.0.0.9:7000", 5000); err != nil {
			t.Fatal(err)
		}
		if err := s.KeepMonitorAlive(ctx, "777", "10.0.0.9:7001", 5000); !errors.Is(err, store.ErrMonitorNotFound) {
			t.Fatalf("keep-alive of unknown err = %v", err)
		}
		stale, _ := s.StaleMonitors(ctx, 5000)
		if len(stale) != 0 {
			t.Fatalf("stale before 5000 = %v", stale)
		}
		stale, _ = s.StaleMonitors(ctx, 5001)
		if len(stale) != 1 || stale[0].E164 != "777" || stale[0].Addr != "10.0.0.9:7000" {
			t.Fatalf("stale before 5001 = %v", stale)
		}
		if err := s.RemoveMonitor(ctx, "777", "10.0.0.9:7000"); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.Monitors(ctx, "777"); len(m) != 0 {
			t.Fatalf("monitors after remove = %v", m)
		}

		tpl := protocol.Template{Name: "board", Domain: "acme", Scale: 32, Resolution: "1080p", Public: true}
		e164, err := s.PutTemplate(ctx, tpl, numbering)
		if err != nil || e164 == "" {
			t.Fatalf("PutTemplate = %q, %v", e164, err)
		}
		tpl.Public = false
		tpl.E164 = "6600900"
		if _, err := s.PutTemplate(ctx, tpl, numbering); err != nil {
			t.Fatal(err)
		}
		all, _ := s.DomainTemplates(ctx, "acme", false)
		pub, _ := s.DomainTemplates(ctx, "acme", true)
		if len(all) != 2 || len(pub) != 1 || pub[0].E164 != e164 {
			t.Fatalf("templates all=%v public=%v", all, pub)
		}
		if err := s.DeleteTemplate(ctx, "6600900"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Template(ctx, "6600900"); !errors.Is(err, store.ErrTemplateNotFound) {
			t.Fatalf("deleted template err = %v", err)
		}
	})

}

func TestListFilter(t *testing.T) {
	open := protocol.Conference{Public: true}
	closed := protocol.Conference{Public: true, Invited: []string{"mt1"}}
	private := protocol.Conference{}
	tests := []struct {
		name string
		f    store.ListFilter
		c    protocol.Conference
		want bool
	}{
		{"no filter keeps private", store.ListFilter{}, private, true},
		{"public only drops private", store.ListFilter{PublicOnly: true}, private, false},
		{"invited terminal sees closed", store.ListFilter{Terminal: "mt1"}, closed, true},
		{"other terminal misses closed", store.ListFilter{Terminal: "mt2"}, closed, false},
		{"any terminal sees open", store.ListFilter{Terminal: "mt2"}, open, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Keep(&tt.c); got != tt.want {
				t.Fatalf("Keep = %v", got)
			}
		})
	}
}

func BenchmarkReserveCommitRelease(b *testing.B) {
	e, err := store.StartEmbedded("")
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	s, err := store.Open(context.Background(), store.Options{URL: e.URL()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.PublishDomain(ctx, store.DomainInfo{Moid: "acme", Used: true}, license.Limits{"8_720p": 1 << 30}); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e164, err := s.Reserve(ctx, reservation("acme", ""))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Commit(ctx, store.Placement{E164: e164, Node: "n1"}); err != nil {
				b.Fatal(fmt.Errorf("commit %s: %w", e164, err))
			}
		}
	})
}

// Closing the store while creates are under way loses none of them: each
// either ran, with its result, or was refused as closed; none panics or
// waits forever.
func TestCloseWhileReserving(t *testing.T) {
	e, err := store.StartEmbedded("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	s := testkit.OpenStore(t, e.URL()) // closed below; the cleanup's second close is harmless
	publish(t, s, "acme", license.Limits{"8_720p": 1 << 20})
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ran, refused int
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Bounded: a creator that is never told the store closed ends
			// here and fails the count below.
			for range 100000 {
				_, err := s.Reserve(ctx, reservation("acme", ""))
				mu.Lock()
				if err != nil {
					refused++
					mu.Unlock()
					if !errors.Is(err, redis.ErrClosed) {
						t.Errorf("a create during close failed with %v, want the closed error", err)
					}
					return
				}
				ran++
				mu.Unlock()
			}
		}()
	}
	testkit.Eventually(t, time.Minute, testkit.Cond("50 creates to run before the close", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return ran >= 50
	}))
	s.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("creators still wait a minute after the store closed")
	}
	if refused != 16 {
		t.Fatalf("%d of 16 creators were told the store closed", refused)
	}
}
