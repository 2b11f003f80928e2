package service_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/service"
	"github.com/convene/convene/internal/testkit"
)

type ping struct {
	Type string `json:"type"`
}

func connect(t *testing.T) *bus.Bus {
	t.Helper()
	emb := testkit.BusServer(t, bus.EmbeddedOptions{NoListen: true})
	b := testkit.Dial(t, bus.Options{Embedded: emb})
	return b
}

var pong = bus.HandlerFunc(func(_ context.Context, m *bus.Msg) { _ = m.Respond(ping{Type: "PONG"}) })

// answers reports whether somebody answers on subject.
func answers(t *testing.T, b *bus.Bus, subject string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := b.Call(ctx, subject, ping{Type: "PING"}, nil)
	if err != nil && !errors.Is(err, bus.ErrNoResponders) {
		t.Fatalf("call %s: %v", subject, err)
	}
	return err == nil
}

func TestLife(t *testing.T) {
	b := connect(t)
	again := errors.New("already started")
	ctx := context.Background()

	t.Run("a start that fails drops what it subscribed", func(t *testing.T) {
		var l service.Life
		l.Init("svc failing", b, nil)
		boom := errors.New("boom")
		err := l.Start(again, func() error {
			if _, err := l.Subscribe(b, "svc.failing", pong); err != nil {
				return err
			}
			if err := l.Confirm(ctx, b); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) || l.Ready() {
			t.Fatalf("Start = %v, ready %v: want boom, not ready", err, l.Ready())
		}
		if answers(t, b, "svc.failing") {
			t.Fatal("a failed start left its subscription behind")
		}
		if err := l.Start(again, func() error { return nil }); err != again {
			t.Fatalf("second Start = %v, want %v", err, again)
		}
		if err := l.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("shutdown drops, stops and waits", func(t *testing.T) {
		var l service.Life
		l.Init("svc ok", b, nil)
		var stopped atomic.Bool
		err := l.Start(again, func() error {
			if _, err := l.Subscribe(b, "svc.ok", pong); err != nil {
				return err
			}
			if err := l.Confirm(ctx, b, nil); err != nil {
				return err
			}
			l.Go(func() {
				<-l.Done()
				stopped.Store(true)
			})
			return nil
		})
		if err != nil || !l.Ready() {
			t.Fatalf("Start = %v, ready %v", err, l.Ready())
		}
		if !answers(t, b, "svc.ok") {
			t.Fatal("nobody answers after Start")
		}
		if err := l.Start(again, func() error { t.Fatal("ran twice"); return nil }); err != again {
			t.Fatalf("second Start = %v, want %v", err, again)
		}
		if err := l.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if !stopped.Load() || l.Ready() {
			t.Fatalf("after Shutdown: goroutine stopped %v, ready %v", stopped.Load(), l.Ready())
		}
		if answers(t, b, "svc.ok") {
			t.Fatal("somebody still answers after Shutdown")
		}
		if err := l.Shutdown(ctx); err != nil {
			t.Fatalf("second Shutdown: %v", err)
		}
	})
}
