package host

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
)

func msg(i int) Message { return Message{Type: "N", Body: []byte(strconv.Itoa(i))} }

func num(t *testing.T, m Message) int {
	t.Helper()
	n, err := strconv.Atoi(string(m.Body))
	if err != nil {
		t.Fatalf("body %q", m.Body)
	}
	return n
}

// hubs of each kind, for the tests both must pass.
func kinds(t *testing.T, capacity int) map[string]func() (hub, hub) {
	return map[string]func() (hub, hub){
		"local": func() (hub, hub) {
			h := newLocalHub("work", capacity)
			return h, h
		},
		"distributed": func() (hub, hub) {
			_, e := testBus(t)
			subject := "channel.work." + strconv.Itoa(len(t.Name()))
			send := newDistHub("work", subject, "work", capacity, NewBusTransport(connect(t, e, "sender")), slog.New(slog.DiscardHandler))
			recv := newDistHub("work", subject, "work", capacity, NewBusTransport(connect(t, e, "receiver")), slog.New(slog.DiscardHandler))
			return send, recv
		},
	}
}

// Messages arrive in the order they were sent, whichever the kind.
func TestChannelOrder(t *testing.T) {
	for kind, mk := range kinds(t, 4) {
		t.Run(kind, func(t *testing.T) {
			sendHub, recvHub := mk()
			out, in := newEndpoint(sendHub), newEndpoint(recvHub)
			ctx := context.Background()
			const n = 200
			got := make(chan int, n)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n {
					m, err := in.Receive(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					got <- num(t, m)
				}
			}()
			// Receive must subscribe before the first send can find it;
			// Send waits for a receiver in any case.
			for i := range n {
				if err := out.Send(ctx, msg(i)); err != nil {
					t.Fatal(err)
				}
			}
			wg.Wait()
			close(got)
			want := 0
			for g := range got {
				if g != want {
					t.Fatalf("got %d, want %d", g, want)
				}
				want++
			}
			if want != n {
				t.Fatalf("got %d messages", want)
			}
		})
	}
}

// A full channel holds its senders back until a receiver takes a
// message; a sender whose context ends meanwhile gets an error and its
// message is not queued.
func TestChannelBackPressure(t *testing.T) {
	for kind, mk := range kinds(t, 2) {
		t.Run(kind, func(t *testing.T) {
			sendHub, recvHub := mk()
			out, in := newEndpoint(sendHub), newEndpoint(recvHub)
			if err := recvHub.attach(); err != nil { // a receiver that does not receive yet
				t.Fatal(err)
			}
			ctx := context.Background()
			for i := range 2 {
				if err := out.Send(ctx, msg(i)); err != nil {
					t.Fatal(err)
				}
			}
			if q := recvHub.status().Queued; q != 2 {
				t.Fatalf("queued %d", q)
			}
			gone, cancel := context.WithCancel(ctx)
			cancel()
			if err := out.Send(gone, msg(99)); err == nil {
				t.Fatal("a full channel took a message")
			}
			done := make(chan error, 1)
			go func() { done <- out.Send(ctx, msg(2)) }()
			if kind == "distributed" {
				// The receiver's host refuses it while full: the sender
				// is held back by refusals, not by a lost message.
				eventually(t, "the full receiver refuses", func() bool { return recvHub.status().Refused >= 2 })
			}
			select {
			case err := <-done:
				t.Fatalf("Send into a full channel returned %v", err)
			default:
			}
			for want := range 3 {
				m, err := in.Receive(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got := num(t, m); got != want {
					t.Fatalf("got %d, want %d", got, want)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			recvHub.detach()
		})
	}
}

// A closed endpoint refuses its instance's calls.
func TestEndpointClosed(t *testing.T) {
	e := newEndpoint(newLocalHub("x", 1))
	e.close()
	ctx := context.Background()
	if err := e.Send(ctx, msg(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send = %v", err)
	}
	if _, err := e.Receive(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive = %v", err)
	}
}

// The receivers of several hosts share a distributed channel: each
// message reaches one of them, in the order it was sent for each.
func TestDistributedShareLoad(t *testing.T) {
	_, e := testBus(t)
	log := slog.New(slog.DiscardHandler)
	out := newEndpoint(newDistHub("work", "channel.share", "work", 8, NewBusTransport(connect(t, e, "sender")), log))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	got := map[string][]int{}
	var wg sync.WaitGroup
	for _, host := range []string{"b", "c"} {
		hb := newDistHub("work", "channel.share", "work", 8, NewBusTransport(connect(t, e, host)), log)
		if err := hb.attach(); err != nil {
			t.Fatal(err)
		}
		in := newEndpoint(hb)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := in.Receive(ctx)
				if err != nil {
					return
				}
				mu.Lock()
				got[host] = append(got[host], num(t, m))
				mu.Unlock()
			}
		}()
	}
	const n = 200
	for i := range n {
		if err := out.Send(ctx, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every message taken", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got["b"])+len(got["c"]) == n
	})
	cancel()
	wg.Wait()
	if len(got["b"]) == 0 || len(got["c"]) == 0 {
		t.Fatalf("one host took everything: b %d, c %d", len(got["b"]), len(got["c"]))
	}
	all := append(append([]int(nil), got["b"]...), got["c"]...)
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("message %d lost or doubled (%v)", i, all)
		}
	}
	for host, l := range got {
		if !slices.IsSorted(l) {
			t.Fatalf("host %s took messages out of order: %v", host, l)
		}
	}
}

// When a host's last receiver goes, what that host holds is handed to
// another host's receivers, in order.
func TestDistributedHandBack(t *testing.T) {
	_, e := testBus(t)
	log := slog.New(slog.DiscardHandler)
	out := newEndpoint(newDistHub("work", "channel.back", "work", 16, NewBusTransport(connect(t, e, "sender")), log))
	a := newDistHub("work", "channel.back", "work", 16, NewBusTransport(connect(t, e, "a")), log)
	if err := a.attach(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 5 {
		if err := out.Send(ctx, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	bb := connect(t, e, "b")
	b := newDistHub("work", "channel.back", "work", 16, NewBusTransport(bb), log)
	if err := b.attach(); err != nil {
		t.Fatal(err)
	}
	if err := bb.Flush(ctx); err != nil { // b listens before a leaves
		t.Fatal(err)
	}
	a.detach()
	if q := a.status().Queued; q != 0 {
		t.Fatalf("a still holds %d", q)
	}
	in := newEndpoint(b)
	for want := range 5 {
		m, err := in.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := num(t, m); got != want {
			t.Fatalf("b got %d, want %d", got, want)
		}
	}
}
