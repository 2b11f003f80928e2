package bus

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond until it holds or the deadline passes. The bus's
// own tests cannot use the shared testkit, which starts buses.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// One wildcard subscription of a group serves every subject it matches,
// each subject's messages in the order they were sent, on one server
// subscription however many subjects there are.
func TestGroupWildcardKeepsOrderPerSubject(t *testing.T) {
	e, err := StartEmbedded(EmbeddedOptions{NoListen: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	b, err := Connect(Options{Embedded: e}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
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
	}), 4, 16)
	defer g.Close()
	before := e.Subscriptions()
	sub, err := g.SubscribeWildcard("conf.*")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.Subscriptions() - before; got != 1 {
		t.Fatalf("the wildcard took %d server subscriptions, want 1", got)
	}
	// More messages than the workers' queues hold: a full queue holds the
	// others up instead of losing messages.
	const subjects, msgs = 50, 40
	for n := range msgs {
		for i := range subjects {
			if err := b.Publish(fmt.Sprintf("conf.%d", i), ping{Type: "X", N: n}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Publish("other.1", ping{Type: "X"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for _, l := range seen {
			total += len(l)
		}
		return total == subjects*msgs
	})
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != subjects {
		t.Fatalf("%d subjects handled, want %d", len(seen), subjects)
	}
	for s, l := range seen {
		for i, n := range l {
			if n != i {
				t.Fatalf("%s: message %d arrived as %d: order lost", s, n, i)
			}
		}
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
}

// The roles that serve conference control may take the wildcard: the
// scheduler on its own platform's bus, another platform's scheduler (the
// platform role) on the bus of a platform it backs up.
func TestControlWildcardIsGrantedToTheSchedulers(t *testing.T) {
	e := startAuthBus(t)
	api := connectAs(t, e, RoleAPI, "api")
	for _, role := range []Role{RoleScheduler, RolePlatform} {
		t.Run(string(role), func(t *testing.T) {
			b := connectAs(t, e, role, "control-"+string(role))
			got := make(chan string, 1)
			g := b.NewGroup(HandlerFunc(func(_ context.Context, m *Msg) {
				_ = m.Respond(ping{Type: "PONG", N: 1})
				got <- m.Subject
			}), 2, 16)
			defer g.Close()
			sub, err := g.SubscribeWildcard("mau.cmcmu.*")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sub.Unsubscribe() }()
			if err := b.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			var ack ping
			if err := api.Call(context.Background(), "mau.cmcmu.5100042", ping{Type: "CM_MAU_RELEASECONF_REQ"}, &ack); err != nil {
				t.Fatalf("a request on a conference's control subject: %v", err)
			}
			if s := <-got; s != "mau.cmcmu.5100042" || ack.N != 1 {
				t.Fatalf("handled %s with answer %+v", s, ack)
			}
		})
	}
}
