package bus

import (
	"context"
	"testing"
	"time"
)

// A serial subscription's Pending counts the message its handler is on
// as well as those waiting: a reader that sees 0 knows every message
// received before was handled.
func TestPendingCountsTheMessageInHand(t *testing.T) {
	b := connect(t)
	entered, release := make(chan struct{}, 3), make(chan struct{})
	sub, err := b.Subscribe("slow", HandlerFunc(func(context.Context, *Msg) {
		entered <- struct{}{}
		<-release
	}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := b.Publish("slow", ping{Type: "PING_NTF", N: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-entered
	waitPending(t, sub, 3)
	release <- struct{}{}
	<-entered
	waitPending(t, sub, 2)
	close(release)
	waitPending(t, sub, 0)
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if n := sub.Pending(); n != 0 {
		t.Fatalf("Pending after Unsubscribe = %d, want 0", n)
	}
}

// waitPending polls sub until want messages are pending, for 10 s at most.
func waitPending(t *testing.T, sub *Subscription, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for sub.Pending() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages pending, want %d", sub.Pending(), want)
		}
		time.Sleep(time.Millisecond)
	}
}
