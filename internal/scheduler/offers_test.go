package scheduler

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// Creates that ask RMS the same question while a request for it is on its
// way share that request: one call, every asker gets its answer. A
// different question, or the same one after the answer came, is a call of
// its own.
func TestOffersShareARequestOnItsWay(t *testing.T) {
	var o offerFlights
	var calls atomic.Int64
	release := make(chan struct{})
	started := make(chan struct{}, 8)
	call := func(context.Context) (protocol.GetResAck, error) {
		calls.Add(1)
		started <- struct{}{}
		<-release
		return protocol.GetResAck{Room: "r1", MCU: []protocol.Server{{Node: "n1"}}}, nil
	}
	q := protocol.GetResReq{Domain: "acme", Scale: 8, Resolution: "720p"}
	const askers = 5
	var wg sync.WaitGroup
	answers := make(chan string, askers)
	ask := func() {
		defer wg.Done()
		ack, err := o.ask(context.Background(), q, call)
		if err != nil {
			t.Error(err)
			return
		}
		answers <- ack.MCU[0].Node
	}
	wg.Add(1)
	go ask()
	<-started // the first request is on its way
	for range askers - 1 {
		wg.Add(1)
		go ask()
	}
	// The others join it: they wait in the flight, not in a call of
	// their own.
	testkit.Eventually(t, testkit.Wait, testkit.Cond("the condition", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		f := o.pending[offerKey{domain: "acme", resolution: "720p", scale: 8}]
		return len(o.pending) == 1 && f != nil && f.askers == askers
	}))
	other := q
	other.Recording = true
	otherDone := make(chan error, 1)
	go func() {
		_, err := o.ask(context.Background(), other, call)
		otherDone <- err
	}()
	<-started // a different question sends its own request
	close(release)
	wg.Wait()
	if err := <-otherDone; err != nil {
		t.Fatal(err)
	}
	close(answers)
	n := 0
	for node := range answers {
		if node != "n1" {
			t.Fatalf("an asker got %q", node)
		}
		n++
	}
	if n != askers {
		t.Fatalf("%d of %d askers were answered", n, askers)
	}
	if got := calls.Load(); got != 2 {
		t.Fatalf("%d requests to RMS for two questions asked at once, want 2", got)
	}
	// Once answered, the same question is asked anew.
	if _, err := o.ask(context.Background(), q, call); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 3 {
		t.Fatalf("%d requests after a later ask, want 3", got)
	}
}

// An asker whose context ends stops waiting with a timeout; the request
// goes on for the others, and its refusal reaches every one of them.
func TestOfferAskerGivesUpAlone(t *testing.T) {
	var o offerFlights
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	nack := &bus.NackError{Type: protocol.RMSGetResNack, Code: protocol.ErrNoResources, Message: "full"}
	call := func(ctx context.Context) (protocol.GetResAck, error) {
		started <- struct{}{}
		select {
		case <-release:
			return protocol.GetResAck{}, nack
		case <-ctx.Done():
			return protocol.GetResAck{}, ctx.Err()
		}
	}
	q := protocol.GetResReq{Domain: "acme", Scale: 8, Resolution: "720p"}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := o.ask(ctx, q, call)
		first <- err
	}()
	<-started
	second := make(chan error, 1)
	go func() {
		_, err := o.ask(context.Background(), q, call)
		second <- err
	}()
	cancel()
	if err := <-first; !errors.Is(err, bus.ErrTimeout) {
		t.Fatalf("an asker that gave up got %v, want a timeout", err)
	}
	close(release)
	var ne *bus.NackError
	if err := <-second; !errors.As(err, &ne) || ne.Code != protocol.ErrNoResources {
		t.Fatalf("the asker that waited got %v, want RMS's refusal", err)
	}
}
