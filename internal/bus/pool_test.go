package bus

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// The pool never runs more than max handlers at once, handles every
// message, and keeps its workers: a steady stream does not start a
// goroutine per message.
func TestPoolBoundsAndReuses(t *testing.T) {
	const max, n = 4, 2000
	var running, peak, done atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(n)
	p := newPool(max, func(nm *nats.Msg) {
		r := running.Add(1)
		for {
			pk := peak.Load()
			if r <= pk || peak.CompareAndSwap(pk, r) {
				break
			}
		}
		if nm.Subject == "block" {
			<-release
		}
		running.Add(-1)
		done.Add(1)
		wg.Done()
	})
	// Fill every slot with a blocked handler; the next message must wait.
	for range max {
		p.handle(&nats.Msg{Subject: "block"})
	}
	handed := make(chan struct{})
	go func() {
		p.handle(&nats.Msg{Subject: "free"})
		close(handed)
	}()
	select {
	case <-handed:
		t.Fatal("a message was handed over with all workers busy")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-handed
	for range n - max - 1 {
		p.handle(&nats.Msg{Subject: "free"})
	}
	wg.Wait()
	if got := done.Load(); got != n {
		t.Fatalf("handled %d messages, want %d", got, n)
	}
	if pk := peak.Load(); pk > max {
		t.Fatalf("%d handlers ran at once, limit %d", pk, max)
	}
	// Workers are reused: a new one starts only when a message finds none
	// idle, which after the first max happens only in a race with a worker
	// finishing.
	t.Logf("%d workers started", p.started.Load())
	if s := p.started.Load(); s > 4*max {
		t.Fatalf("%d workers started for %d messages", s, n)
	}
}
