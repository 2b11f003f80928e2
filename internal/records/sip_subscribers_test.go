package records_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/records"
)

func subscriber(user string, secret byte) records.SIPSubscriber {
	return records.SIPSubscriber{User: user, Realm: "sip.convene.test",
		HA1MD5: strings.Repeat(string(rune('0'+secret)), 32), HA1SHA256: strings.Repeat(string(rune('0'+secret)), 64)}
}

func TestSIPSubscribers(t *testing.T) {
	eachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := open(t, url)
		clk := newClock(db)

		s, created, err := db.PutSIPSubscriber(ctx, subscriber("1001", 1))
		if err != nil || !created || s.Version != 1 || s.Disabled {
			t.Fatalf("put: %+v, created %v, %v", s, created, err)
		}
		// The same content again (a retry) changes nothing.
		clk.advance(time.Minute)
		again, created, err := db.PutSIPSubscriber(ctx, subscriber("1001", 1))
		if err != nil || created || again.Version != 1 || !again.UpdatedAt.Equal(s.UpdatedAt) {
			t.Fatalf("put again: %+v, created %v, %v", again, created, err)
		}
		// New credentials replace the old ones.
		changed, created, err := db.PutSIPSubscriber(ctx, subscriber("1001", 2))
		if err != nil || created || changed.Version != 2 || changed.HA1MD5 != subscriber("1001", 2).HA1MD5 {
			t.Fatalf("new password: %+v, created %v, %v", changed, created, err)
		}

		for i := range 3 {
			if _, _, err := db.PutSIPSubscriber(ctx, subscriber(fmt.Sprintf("20%02d", i), 3)); err != nil {
				t.Fatal(err)
			}
		}
		all, err := db.SIPSubscribers(ctx, "", 0)
		if err != nil || len(all) != 4 || all[0].User != "1001" {
			t.Fatalf("list: %d, %v", len(all), err)
		}
		page, err := db.SIPSubscribers(ctx, "1001", 2)
		if err != nil || len(page) != 2 || page[0].User != "2000" || page[1].User != "2001" {
			t.Fatalf("page after 1001: %+v, %v", page, err)
		}

		for i := range 2 {
			d, err := db.DisableSIPSubscriber(ctx, "1001")
			if err != nil || !d.Disabled || d.Version != 3 {
				t.Fatalf("disable %d: %+v, %v", i, d, err)
			}
		}
		if _, err := db.DisableSIPSubscriber(ctx, "nobody"); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("disable of an unknown user: %v", err)
		}
		if _, err := db.SIPSubscriber(ctx, "nobody"); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("read of an unknown user: %v", err)
		}
		// Put enabled again, it is enabled.
		if s, _, err := db.PutSIPSubscriber(ctx, subscriber("1001", 2)); err != nil || s.Disabled {
			t.Fatalf("re-enable: %+v, %v", s, err)
		}
	})
}

func TestSIPSubscriberValidation(t *testing.T) {
	db := open(t, records.Backends[0].URL(t))
	good := subscriber("1001", 1)
	for name, s := range map[string]records.SIPSubscriber{
		"empty user":     func() records.SIPSubscriber { s := good; s.User = ""; return s }(),
		"user with @":    func() records.SIPSubscriber { s := good; s.User = "a@b"; return s }(),
		"user too long":  func() records.SIPSubscriber { s := good; s.User = strings.Repeat("a", 65); return s }(),
		"no realm":       func() records.SIPSubscriber { s := good; s.Realm = ""; return s }(),
		"upper-case HA1": func() records.SIPSubscriber { s := good; s.HA1MD5 = strings.Repeat("A", 32); return s }(),
		"short HA1":      func() records.SIPSubscriber { s := good; s.HA1SHA256 = "00"; return s }(),
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := db.PutSIPSubscriber(context.Background(), s); !errors.Is(err, records.ErrInvalid) {
				t.Fatalf("put: %v, want ErrInvalid", err)
			}
		})
	}
}

// A subscriber's credentials never reach a log.
func TestSIPSubscriberLogsNoCredentials(t *testing.T) {
	s := subscriber("1001", 7)
	if v := s.LogValue().String(); strings.Contains(v, s.HA1MD5) || strings.Contains(v, s.HA1SHA256) {
		t.Fatalf("logged %s", v)
	}
}
