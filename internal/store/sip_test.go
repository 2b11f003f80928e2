package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/faultproxy"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

func reg(aor, callID string, cseq uint32, now time.Time, contacts ...store.SIPContactChange) store.SIPRegistration {
	return store.SIPRegistration{AOR: aor, CallID: callID, CSeq: cseq, Node: "sip-a", Source: "127.0.0.1:5070",
		Transport: "UDP", Contacts: contacts, Now: now}
}

func contacts(b []store.SIPBinding) []string {
	out := make([]string, len(b))
	for i, x := range b {
		out[i] = x.Contact
	}
	return out
}

func TestSIPRegistrations(t *testing.T) {
	ctx := context.Background()
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		now := time.Now()
		a := store.SIPContactChange{URI: "sip:1001@127.0.0.1:5070", Expires: time.Minute}
		b := store.SIPContactChange{URI: "sip:1001@127.0.0.1:5071;transport=tcp", Expires: 10 * time.Second, Q: "0.9"}
		got, err := s.SIPRegister(ctx, reg("1001", "c1", 1, now, b, a))
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{a.URI, b.URI}; fmt.Sprint(contacts(got)) != fmt.Sprint(want) {
			t.Fatalf("bindings %v, want %v (q 1 before q 0.9)", contacts(got), want)
		}
		read, err := s.SIPBindings(ctx, "1001", now)
		if err != nil || len(read) != 2 || read[1].Q != "0.9" || read[0].Node != "sip-a" || read[0].Transport != "UDP" {
			t.Fatalf("read back %+v, %v", read, err)
		}

		a2 := a
		a2.Expires = 2 * time.Minute
		if _, err := s.SIPRegister(ctx, reg("1001", "c2", 1, now, a2)); err != nil {
			t.Fatal(err)
		}

		_, err = s.SIPRegister(ctx, reg("1001", "c2", 1, now, store.SIPContactChange{URI: a.URI}))
		if !errors.Is(err, store.ErrSIPOutOfOrder) {
			t.Fatalf("a removal with the same CSeq: %v, want ErrSIPOutOfOrder", err)
		}
		if read, _ := s.SIPBindings(ctx, "1001", now); len(read) != 2 {
			t.Fatalf("an out-of-order REGISTER changed the bindings: %v", contacts(read))
		}

		later := now.Add(30 * time.Second)
		if read, _ := s.SIPBindings(ctx, "1001", later); fmt.Sprint(contacts(read)) != fmt.Sprint([]string{a.URI}) {
			t.Fatalf("after b's expiry %v", contacts(read))
		}

		if got, err := s.SIPRegister(ctx, reg("1001", "c2", 2, later, store.SIPContactChange{URI: a.URI})); err != nil || len(got) != 0 {
			t.Fatalf("removal left %v, %v", contacts(got), err)
		}
		if n, _ := s.Client().Exists(ctx, "sip/reg/1001").Result(); n != 0 {
			t.Fatal("an address of record with no binding left kept its record")
		}
	})

}

func TestSIPRegistrationWildcardAndSweep(t *testing.T) {
	ctx := context.Background()
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		now := time.Now()
		for i, aor := range []string{"2001", "2002"} {
			c := store.SIPContactChange{URI: fmt.Sprintf("sip:%s@10.0.0.%d", aor, i+1), Expires: time.Second}
			if _, err := s.SIPRegister(ctx, reg(aor, "w"+aor, 1, now, c)); err != nil {
				t.Fatal(err)
			}
		}

		r := reg("2001", "w2001", 2, now)
		r.RemoveAll = true
		if got, err := s.SIPRegister(ctx, r); err != nil || len(got) != 0 {
			t.Fatalf("wildcard removal left %v, %v", got, err)
		}

		n, err := s.SIPSweepBindings(ctx, now.Add(2*time.Second), 10)
		if err != nil || n != 1 {
			t.Fatalf("sweep looked at %d records (%v), want 1", n, err)
		}
		if k, _ := s.Client().Keys(ctx, "sip/reg*").Result(); len(k) != 0 {
			t.Fatalf("left after the sweep: %v", k)
		}
	})

}

func TestSIPNonceCounts(t *testing.T) {
	ctx := context.Background()
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		now := time.Now()
		until := now.Add(time.Minute)
		if err := s.SIPUseNonce(ctx, "n1", 1, until, now); err != nil {
			t.Fatal(err)
		}
		for _, nc := range []uint32{1, 0} {
			if err := s.SIPUseNonce(ctx, "n1", nc, until, now); !errors.Is(err, store.ErrSIPNonceReplay) {
				t.Fatalf("count %d used again: %v, want ErrSIPNonceReplay", nc, err)
			}
		}
		if err := s.SIPUseNonce(ctx, "n1", 2, until, now); err != nil {
			t.Fatalf("the next count: %v", err)
		}

		if err := s.SIPUseNonce(ctx, "n2", 1, until, until.Add(time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.Client().HExists(ctx, "sip/nonces", "n1").Result(); ok {
			t.Fatal("an expired nonce's record was kept")
		}
	})

}

func TestSIPDigestSecretIsShared(t *testing.T) {
	ctx := context.Background()
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		a, err := s.SIPDigestSecret(ctx, "first")
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.SIPDigestSecret(ctx, "second")
		if err != nil || a != "first" || b != "first" {
			t.Fatalf("secrets %q and %q (%v), want the first for both", a, b, err)
		}
	})

}

func TestSIPCalls(t *testing.T) {
	ctx := context.Background()
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		now := time.Now().Truncate(time.Millisecond)
		c := store.SIPCall{CallID: "call-1", FromTag: "ft", Caller: "1001", Called: "1002", Media: "voice",
			Node: "sip-a", Platform: "p1", Start: now, Deadline: now.Add(time.Minute), CallerCSeq: 7,
			FromHeader: "<sip:1001@d>;tag=ft", CallerAddr: "127.0.0.1:5070", CallerTransport: "UDP"}
		for i, want := range []bool{true, false} {
			created, err := s.SIPCallStart(ctx, c)
			if err != nil || created != want {
				t.Fatalf("start %d: created %v (%v), want %v", i, created, err, want)
			}
		}
		answer := store.SIPCall{CallID: "call-1", ToTag: "tt", Answer: now.Add(time.Second), Status: 200,
			Deadline: now.Add(time.Hour)}
		for i, want := range []string{store.SIPCallUpdated, store.SIPCallSkipped} {
			if got, err := s.SIPCallUpdate(ctx, answer, "answer"); err != nil || got != want {
				t.Fatalf("answer %d: %q (%v), want %q", i, got, err, want)
			}
			answer.ToTag = "another-branch"
		}
		read, ok, err := s.SIPCall(ctx, "call-1")
		if err != nil || !ok || read.ToTag != "tt" || !read.Answer.Equal(now.Add(time.Second)) || read.CallerCSeq != 7 ||
			!read.Deadline.Equal(now.Add(time.Hour)) || read.FromHeader != c.FromHeader {
			t.Fatalf("read %+v, %v, %v", read, ok, err)
		}
		// A BYE's tags must name a dialog of the call: the caller's (ft,
		// tt) or the callee's (tt, ft).
		bye := store.SIPCall{End: now.Add(time.Minute), Reason: "bye"}
		for _, tags := range [][2]string{{"", ""}, {"ft", ""}, {"ft", "another-branch"}, {"tt", "tt"}, {"x", "tt"}, {"tt", "x"}} {
			if _, first, err := s.SIPCallEndDialog(ctx, "call-1", tags[0], tags[1], bye, now.Add(time.Minute)); !errors.Is(err, store.ErrNoSuchDialog) || first {
				t.Fatalf("a BYE tagged %q ended the call: %v, %v", tags, first, err)
			}
		}
		ended, first, err := s.SIPCallEndDialog(ctx, "call-1", "tt", "ft", bye, now.Add(time.Minute))
		if err != nil || !first || ended.Caller != "1001" || ended.ToTag != "tt" || ended.Reason != "bye" || ended.Status != 200 {
			t.Fatalf("end: %+v, %v, %v", ended, first, err)
		}
		if _, first, err := s.SIPCallEnd(ctx, "call-1", store.SIPCall{Reason: "bye"}, now.Add(time.Minute)); err != nil || first {
			t.Fatalf("a second end found the call: %v, %v", first, err)
		}
		if got, _ := s.SIPCallUpdate(ctx, answer, ""); got != store.SIPCallAbsent {
			t.Fatalf("update of an ended call: %q", got)
		}

		if err := s.SIPCallsForget(ctx, "call-1"); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.SIPCallCount(ctx); n != 0 {
			t.Fatalf("%d calls left after the forget", n)
		}

		// Before the answer the call has no to-tag: the caller's from-tag
		// is enough (a BYE of an early dialog), the callee's is unknown.
		early := store.SIPCall{CallID: "call-2", FromTag: "f2", Caller: "1001", Called: "1002", Start: now, Deadline: now.Add(time.Minute)}
		if _, err := s.SIPCallStart(ctx, early); err != nil {
			t.Fatal(err)
		}
		if _, first, err := s.SIPCallEndDialog(ctx, "call-2", "early-branch", "f2", bye, now.Add(time.Minute)); !errors.Is(err, store.ErrNoSuchDialog) || first {
			t.Fatalf("an unknown callee tag ended a call not answered: %v, %v", first, err)
		}
		if _, first, err := s.SIPCallEndDialog(ctx, "call-2", "f2", "early-branch", bye, now.Add(time.Minute)); err != nil || !first {
			t.Fatalf("the caller's BYE of an early dialog: %v, %v", first, err)
		}
	})

}

// Expired calls are handed to one sweeper each, however many sweep at once.
func TestSIPCallsExpireOnce(t *testing.T) {
	ctx := context.Background()
	testkit.EachStore(t, func(t *testing.T, s *store.Store) {
		now := time.Now()
		const calls = 40
		for i := range calls {
			c := store.SIPCall{CallID: fmt.Sprintf("x%d", i), Caller: "a", Called: "b", Start: now, Deadline: now.Add(time.Second)}
			if _, err := s.SIPCallStart(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		keep := store.SIPCall{CallID: "keep", Start: now, Deadline: now.Add(time.Hour)}
		if _, err := s.SIPCallStart(ctx, keep); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := s.SIPCallsExpired(ctx, now.Add(2*time.Second), 3, now.Add(time.Hour))
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, c := range got {
						seen[c.CallID]++
						if c.Reason != "no-answer" || c.Status != 408 || c.Caller != "a" || c.Again {
							t.Errorf("expired call %+v", c)
						}
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != calls {
			t.Fatalf("%d calls expired, want %d", len(seen), calls)
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("call %s expired %d times", id, n)
			}
		}

		again, err := s.SIPCallsExpired(ctx, now.Add(2*time.Hour), 100, now.Add(3*time.Hour))
		if err != nil || len(again) != calls+1 {
			t.Fatalf("%d calls due again (%v), want %d", len(again), err, calls+1)
		}
		var ids []string
		for _, c := range again {
			if c.CallID != "keep" && !c.Again {
				t.Fatalf("call %s came back as new", c.CallID)
			}
			ids = append(ids, c.CallID)
		}
		if err := s.SIPCallsForget(ctx, ids...); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.SIPCallCount(ctx); n != 0 {
			t.Fatalf("%d calls left, want none", n)
		}
	})

}

// A SIP write whose reply was lost is sent again and answered as its first
// run: a nonce count is not refused as its own replay, a call is ended
// once and its record returned.
func TestSIPLostReplyAppliesOnce(t *testing.T) {
	ctx := context.Background()
	behindProxy(t, func(t *testing.T, s, direct *store.Store, p *faultproxy.Proxy) {
		if err := s.LoadSIPScripts(ctx); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		lose := func(op func() error) {
			t.Helper()
			dropped := p.Hits(faultproxy.DropReply)
			p.Inject(faultproxy.Fault{Command: "EVALSHA", Action: faultproxy.DropReply})
			err := op()
			p.Clear()
			if p.Hits(faultproxy.DropReply) != dropped+1 {
				t.Fatal("no reply was dropped")
			}
			if err != nil {
				t.Fatalf("a write whose reply was lost answered %v", err)
			}
		}
		lose(func() error { return s.SIPUseNonce(ctx, "lost", 1, now.Add(time.Minute), now) })
		if err := direct.SIPUseNonce(ctx, "lost", 1, now.Add(time.Minute), now); !errors.Is(err, store.ErrSIPNonceReplay) {
			t.Fatalf("the count was not recorded: %v", err)
		}
		lose(func() error {
			_, err := s.SIPRegister(ctx, reg("3001", "lr", 5, now, store.SIPContactChange{URI: "sip:3001@h", Expires: time.Minute}))
			return err
		})
		if _, err := direct.SIPCallStart(ctx, store.SIPCall{CallID: "lost-call", Caller: "a", Start: now, Deadline: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		lose(func() error {
			c, first, err := s.SIPCallEnd(ctx, "lost-call", store.SIPCall{Reason: "bye"}, now.Add(time.Minute))
			if err == nil && (!first || c.Caller != "a") {
				return errors.New("the end answered as if another had ended the call")
			}
			return err
		})
	})
}
