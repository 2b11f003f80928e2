package sip

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/sip/digest"
)

// countingSubscribers is a records database of subscribers in memory that
// counts its reads.
type countingSubscribers struct {
	mu    sync.Mutex
	subs  map[string]records.SIPSubscriber
	reads int
}

func (c *countingSubscribers) SIPSubscriber(_ context.Context, user string) (records.SIPSubscriber, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	s, ok := c.subs[user]
	if !ok {
		return s, records.ErrNotFound
	}
	return s, nil
}

func (c *countingSubscribers) put(s records.SIPSubscriber) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs[s.User] = s
}

// A node reads a subscriber from the records once per SubscriberCacheTTL:
// a subscriber added is found at once, one disabled is refused once the
// TTL has passed, and a negative TTL reads every time.
func TestSubscriberCache(t *testing.T) {
	ctx := context.Background()
	sub, err := NewSubscriber("1001", "pw-1001", testDomain)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		ttl       time.Duration
		wantReads int // after three reads within the TTL
	}{
		{"default", 0, 1},
		{"off", -1, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := &countingSubscribers{subs: map[string]records.SIPSubscriber{}}
			now := time.Unix(1_800_000_000, 0)
			n, err := New(Options{Name: "sip-a", Platform: testPlatform, Domain: testDomain, UDP: "127.0.0.1:0", SubscriberCacheTTL: c.ttl},
				Deps{Store: noStore{}, Subscribers: db, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := n.subscriber(ctx, "1001"); !errors.Is(err, records.ErrNotFound) {
				t.Fatalf("an unknown subscriber: %v", err)
			}
			db.put(sub)
			before := db.reads
			for range 3 {
				s, err := n.subscriber(ctx, "1001")
				if err != nil || s.Disabled {
					t.Fatalf("a subscriber just added: %+v %v", s, err)
				}
			}
			if got := db.reads - before; got != c.wantReads {
				t.Fatalf("three reads within the TTL read the records %d times, want %d", got, c.wantReads)
			}
			off := sub
			off.Disabled = true
			db.put(off)
			now = now.Add(DefaultSubsCache)
			if s, err := n.subscriber(ctx, "1001"); err != nil || !s.Disabled {
				t.Fatalf("a subscriber disabled a TTL ago: %+v %v", s, err)
			}
			if _, ok, _ := n.secrets(ctx, "1001", digest.MD5); ok {
				t.Fatal("a disabled subscriber has credentials")
			}
		})
	}
}

// noStore is a platform store a node that is not started never calls.
type noStore struct{ Store }
