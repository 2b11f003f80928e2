package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func connect(t *testing.T) *Bus {
	t.Helper()
	e, err := StartEmbedded(EmbeddedOptions{NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	b, err := Connect(Options{Embedded: e, RequestTimeout: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

type ping struct {
	Type string `json:"type"`
	N    int    `json:"n"`
}

func TestCall(t *testing.T) {
	b := connect(t)
	ctx := context.Background()
	x := NewMux(nil)
	x.HandleFunc("PING_REQ", func(_ context.Context, m *Msg) {
		var p ping
		if err := m.Decode(&p); err != nil {
			t.Error(err)
		}
		if p.N < 0 {
			_ = m.Nack("PING_NACK", "NEGATIVE", "n must not be negative")
			return
		}
		_ = m.Respond(ping{Type: "PING_ACK", N: p.N + 1})
	})
	x.HandleFunc("SLOW_REQ", func(context.Context, *Msg) { time.Sleep(time.Second) })
	if _, err := b.Subscribe("svc", x, Concurrent(4)); err != nil {
		t.Fatal(err)
	}

	var ack ping
	if err := b.Call(ctx, "svc", ping{Type: "PING_REQ", N: 41}, &ack); err != nil || ack.N != 42 || ack.Type != "PING_ACK" {
		t.Fatalf("Call = %+v, %v", ack, err)
	}
	var ne *NackError
	if err := b.Call(ctx, "svc", ping{Type: "PING_REQ", N: -1}, &ack); !errors.As(err, &ne) || ne.Code != "NEGATIVE" || ne.Type != "PING_NACK" {
		t.Fatalf("nack = %v", err)
	}
	if err := b.Call(ctx, "svc", ping{Type: "WHAT_REQ"}, nil); !errors.As(err, &ne) || ne.Code != "BAD_REQUEST" {
		t.Fatalf("unknown type = %v", err)
	}
	if err := b.Call(ctx, "nobody", ping{Type: "PING_REQ"}, nil); !errors.Is(err, ErrNoResponders) {
		t.Fatalf("no responders = %v", err)
	}
	if err := b.Call(ctx, "svc", ping{Type: "SLOW_REQ"}, nil); !errors.Is(err, ErrTimeout) {
		t.Fatalf("slow = %v, want ErrTimeout", err)
	}
}

func TestTypeOf(t *testing.T) {
	tests := map[string]string{
		`{"type":"A_REQ","x":1}`:   "A_REQ",
		`{ "x":1, "type":"B_NTF"}`: "B_NTF",
		`{"type":"esc\"aped"}`:     `esc"aped`,
		`not json`:                 "",
	}
	for in, want := range tests {
		if got := typeOf([]byte(in)); got != want {
			t.Errorf("typeOf(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestGroupKeepsOrderPerSubject(t *testing.T) {
	b := connect(t)
	var (
		mu   sync.Mutex
		seen = map[string][]int{}
	)
	g := b.NewGroup(HandlerFunc(func(_ context.Context, m *Msg) {
		var p ping
		_ = m.Decode(&p)
		mu.Lock()
		seen[m.Subject] = append(seen[m.Subject], p.N)
		mu.Unlock()
	}), 4, 1024)
	defer g.Close()
	const subjects, msgs = 20, 50
	for i := range subjects {
		if _, err := g.Subscribe(fmt.Sprintf("conf.%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for n := range msgs {
		for i := range subjects {
			if err := b.Publish(fmt.Sprintf("conf.%d", i), ping{Type: "X", N: n}); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		total := 0
		for _, l := range seen {
			total += len(l)
		}
		mu.Unlock()
		if total == subjects*msgs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d of %d messages", total, subjects*msgs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for s, l := range seen {
		for i, n := range l {
			if n != i {
				t.Fatalf("%s: message %d arrived as %d: order lost", s, n, i)
			}
		}
	}
}

func TestSystemConnectionHearsDisconnects(t *testing.T) {
	e, err := StartEmbedded(EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	sys, err := Connect(Options{Embedded: e, System: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	got := make(chan ConnEvent, 4)
	if _, err := sys.Subscribe(ConnEventsSubject(AppAccount, "DISCONNECT"), HandlerFunc(func(_ context.Context, m *Msg) {
		var ev ConnEvent
		if err := m.Decode(&ev); err == nil {
			got <- ev
		}
	})); err != nil {
		t.Fatal(err)
	}
	if err := sys.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// An application client over TCP, with this process's credentials.
	app, err := Connect(Options{Embedded: e, OverTCP: true, Name: "mcu:n7"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// It can talk to other application clients.
	inproc, err := Connect(Options{Embedded: e, Name: "peer"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer inproc.Close()
	if _, err := inproc.Subscribe("echo", HandlerFunc(func(_ context.Context, m *Msg) { _ = m.Respond(ping{Type: "PONG"}) })); err != nil {
		t.Fatal(err)
	}
	_ = inproc.Flush(context.Background())
	if err := app.Call(context.Background(), "echo", ping{Type: "PING"}, nil); err != nil {
		t.Fatalf("application clients cannot talk: %v", err)
	}
	app.Close()
	select {
	case ev := <-got:
		if ev.Client.Name != "mcu:n7" {
			t.Fatalf("disconnect of %q, want mcu:n7", ev.Client.Name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no disconnect event")
	}
	// Over TCP, with the system credentials.
	tcpSys, err := Connect(Options{Embedded: e, OverTCP: true, System: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tcpSys.Close()
}

func TestKickAndRestart(t *testing.T) {
	e, err := StartEmbedded(EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reconnects := make(chan struct{}, 8)
	c, err := Connect(Options{Embedded: e, OverTCP: true, Name: "mcu:k1", ReconnectWait: 20 * time.Millisecond, OnReconnect: func() { reconnects <- struct{}{} }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := e.Kick("mcu:k1"); n != 1 {
		t.Fatalf("kicked %d connections, want 1", n)
	}
	select {
	case <-reconnects:
	case <-time.After(5 * time.Second):
		t.Fatal("the kicked client did not reconnect")
	}
	url := e.URL()
	e2, err := e.Restart()
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Shutdown()
	select {
	case <-reconnects:
	case <-time.After(5 * time.Second):
		t.Fatal("the client did not reconnect to the restarted server")
	}
	if e2.URL() != url {
		t.Fatalf("restarted on %s, was %s", e2.URL(), url)
	}
}
