package bus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/convene/convene/internal/protocol"
)

const (
	testPlatform = "plat-a"
	testNodePfx  = "mcu:"
)

// startAuthBus starts an embedded server listening on loopback with a
// credential set of its own, for platform plat-a, binding nodes by name.
func startAuthBus(t *testing.T) *Embedded {
	t.Helper()
	c, err := GenerateCreds()
	if err != nil {
		t.Fatal(err)
	}
	e, err := StartEmbedded(EmbeddedOptions{Creds: c, Platform: testPlatform, NodeConnPrefix: testNodePfx})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

// connectAs connects to e over TCP as role, the way another process does.
func connectAs(t *testing.T, e *Embedded, role Role, name string) *Bus {
	t.Helper()
	b, err := Connect(Options{URL: e.URL(), Creds: e.Creds(), Role: role, Name: name, RequestTimeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(b.Close)
	return b
}

// observe subscribes an internal connection to every subject; messages
// arrive on one channel in the order the server delivered them.
func observe(t *testing.T, e *Embedded) (*Bus, chan *nats.Msg) {
	t.Helper()
	b, err := Connect(Options{Embedded: e, Name: "observer"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ch := make(chan *nats.Msg, 1024)
	if _, err := b.nc.ChanSubscribe(">", ch); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b, ch
}

// until reads ch until a message on marker arrives and returns the
// subjects that came before it.
func until(t *testing.T, ch chan *nats.Msg, marker string) []string {
	t.Helper()
	var got []string
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m := <-ch:
			if m.Subject == marker && strings.Contains(string(m.Data), "MARKER") {
				return got
			}
			got = append(got, m.Subject)
		case <-deadline:
			t.Fatalf("the marker on %s never came; saw %v", marker, got)
		}
	}
}

func TestConnectionWithoutCredentialsIsRefused(t *testing.T) {
	e := startAuthBus(t)
	if _, err := nats.Connect(e.URL()); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a client without credentials connected: %v", err)
	}
	if _, err := Connect(Options{URL: e.URL(), Name: "anonymous"}, nil); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Connect without credentials = %v, want ErrUnauthorized", err)
	}
	other, err := GenerateCreds()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Connect(Options{URL: e.URL(), Creds: other, Role: RoleScheduler}, nil); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a key the server does not know = %v, want ErrUnauthorized", err)
	}
	if _, err := nats.Connect(e.URL(), nats.UserInfo(systemUser, "guess")); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("the system user with a wrong password connected: %v", err)
	}
	// The process's own internal key is not this server's.
	if _, err := Connect(Options{URL: e.URL(), Creds: other, Role: RoleInternal}, nil); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("another set's internal key = %v, want ErrUnauthorized", err)
	}
}

func TestNodeCredentialCannotRequestTheScheduler(t *testing.T) {
	e := startAuthBus(t)
	_, seen := observe(t, e)
	node := connectAs(t, e, RoleMCU, testNodePfx+"n1")

	create := struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}{protocol.CMCreateConfReq, "forged"}
	if err := node.Publish(protocol.SubjectCMMAU(testPlatform), create); err != nil {
		t.Fatal(err)
	}
	if err := node.Flush(context.Background()); !errors.Is(err, ErrDenied) {
		t.Fatalf("Flush after a forbidden publish = %v, want ErrDenied", err)
	}
	// The next Flush has nothing new to report.
	if err := node.Flush(context.Background()); err != nil {
		t.Fatalf("second Flush = %v", err)
	}
	marker := protocol.SubjectRMSNodes(testPlatform)
	if err := node.Publish(marker, protocol.Header{Type: "MARKER"}); err != nil {
		t.Fatal(err)
	}
	if got := until(t, seen, marker); len(got) != 0 {
		t.Fatalf("the forged create reached the bus: %v", got)
	}
	// A request fails too, and reaches nobody.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := node.Call(ctx, protocol.SubjectCMMAU(testPlatform), create, nil); err == nil {
		t.Fatal("a node's create request got an answer")
	}
}

func TestNodeCannotSubscribeToEverything(t *testing.T) {
	e := startAuthBus(t)
	node := connectAs(t, e, RoleMCU, testNodePfx+"n1")
	ch := make(chan *nats.Msg, 16)
	for _, s := range []string{">", "mcu.n2", protocol.SubjectCMNotifications, "_INBOX.>", InboxRoot + ".api.>", protocol.SubjectToNode("n1")} {
		if _, err := node.nc.ChanSubscribe(s, ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := node.Flush(context.Background()); !errors.Is(err, ErrDenied) {
		t.Fatalf("Flush after subscribing to > = %v, want ErrDenied", err)
	}
	internal, err := Connect(Options{Embedded: e}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer internal.Close()
	for _, s := range []string{protocol.SubjectCMNotifications, "mcu.n2", "_INBOX.api.x.y", "anything", protocol.SubjectToNode("n1")} {
		if err := internal.Publish(s, protocol.Header{Type: "SECRET"}); err != nil {
			t.Fatal(err)
		}
	}
	m := <-ch
	if m.Subject != protocol.SubjectToNode("n1") || m.Sub.Subject != protocol.SubjectToNode("n1") {
		t.Fatalf("a node read %s through its subscription to %s", m.Subject, m.Sub.Subject)
	}
}

func TestNodeIsBoundToItsName(t *testing.T) {
	e := startAuthBus(t)
	for _, c := range []struct {
		role Role
		name string
	}{
		{RoleMCU, "no-prefix"},    // a node must name itself mcu:<id>
		{RoleMCU, testNodePfx},    // with an id
		{RoleMCU, "mcu:a.b"},      // that is a subject token
		{RoleAPI, "mcu:n1"},       // and only nodes take node names
		{RoleScheduler, "mcu:n1"}, // (RMS follows nodes by these names)
	} {
		_, err := Connect(Options{URL: e.URL(), Creds: e.Creds(), Role: c.role, Name: c.name}, nil)
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s named %q: %v, want ErrUnauthorized", c.role, c.name, err)
		}
	}
	// The internal connection may take any name (the process's own tests
	// and tools stand in for nodes).
	b, err := Connect(Options{Embedded: e, OverTCP: true, Name: "mcu:n9"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}

// TestRolesGetWhatTheTableGrants checks, for every role, that the server
// lets through exactly what Permissions grants: every subject any role
// uses, published and subscribed, plus answers and inboxes.
func TestRolesGetWhatTheTableGrants(t *testing.T) {
	e := startAuthBus(t)
	// Every subject of the table, made concrete.
	var universe []string
	seen := map[string]bool{}
	for _, r := range Roles() {
		g, err := Permissions(r, testPlatform)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range append(append([]string{}, g.Publish...), g.Subscribe...) {
			c := strings.ReplaceAll(s, "*", "x1")
			if !seen[c] {
				seen[c] = true
				universe = append(universe, c)
			}
		}
	}
	universe = append(universe, "mcu.n1", "other.subject", protocol.SubjectRMS("plat-b"), protocol.SubjectFromNodes("plat-b"))

	for _, role := range Roles() {
		t.Run(string(role), func(t *testing.T) {
			g, _ := Permissions(role, testPlatform)
			name := "conn-" + string(role)
			subAllow := g.Subscribe
			if role == RoleMCU {
				name = testNodePfx + "n1"
				subAllow = []string{protocol.SubjectToNode("n1")}
			}
			b := connectAs(t, e, role, name)
			internal, seen := observe(t, e)

			// Publish: exactly the granted subjects reach the bus.
			for _, s := range universe {
				if err := b.Publish(s, protocol.Header{Type: "PROBE"}); err != nil {
					t.Fatal(err)
				}
			}
			marker := strings.ReplaceAll(g.Publish[0], "*", "x1")
			if err := b.Publish(marker, protocol.Header{Type: "MARKER"}); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, s := range universe {
				if matchesAny(s, g.Publish) {
					want = append(want, s)
				}
			}
			if got := until(t, seen, marker); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("published through:\n got %v\nwant %v", got, want)
			}
			_ = b.Flush(context.Background()) // the refusals are expected

			// Subscribe: exactly the granted subjects are delivered.
			ch := make(chan *nats.Msg, 1024)
			for _, s := range append(append([]string{}, universe...), ">", "_INBOX.>", Inbox(RoleAPI)+".>", protocol.SubjectToNode("*")) {
				if _, err := b.nc.ChanSubscribe(s, ch); err != nil {
					t.Fatal(err)
				}
			}
			own := inboxPrefix(role, name) + ".marker"
			if _, err := b.nc.ChanSubscribe(own, ch); err != nil {
				t.Fatal(err)
			}
			_ = b.Flush(context.Background())
			for _, s := range universe {
				if err := internal.Publish(s, protocol.Header{Type: "PROBE"}); err != nil {
					t.Fatal(err)
				}
			}
			if err := internal.Publish(own, protocol.Header{Type: "MARKER"}); err != nil {
				t.Fatal(err)
			}
			want = want[:0]
			for _, s := range universe {
				if matchesAny(s, subAllow) {
					want = append(want, s)
				}
			}
			var got []string
			for m := range ch {
				if m.Subject == own {
					break
				}
				if m.Sub.Subject != m.Subject {
					t.Errorf("read %s through a subscription to %s", m.Subject, m.Sub.Subject)
				}
				got = append(got, m.Subject)
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("delivered:\n got %v\nwant %v", got, want)
			}

			// Requests: the reply comes back to the role's own inbox.
			reqSubject := marker
			if _, err := internal.Subscribe(reqSubject, HandlerFunc(func(_ context.Context, m *Msg) {
				_ = m.Respond(protocol.Header{Type: "PROBE_ACK"})
			})); err != nil {
				t.Fatal(err)
			}
			if err := internal.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := b.Call(context.Background(), reqSubject, protocol.Header{Type: "PROBE_REQ"}, nil); err != nil {
				t.Errorf("a request of %s got no reply: %v", role, err)
			}

			// Answers: only roles that serve requests may answer them. (A
			// fresh connection: one answer per request, and b has two
			// subscriptions that would both take it.)
			if len(subAllow) == 0 {
				return
			}
			b.Close()
			b = connectAs(t, e, role, name)
			served := strings.ReplaceAll(subAllow[0], "*", "x1")
			sub, err := b.Subscribe(served, HandlerFunc(func(_ context.Context, m *Msg) {
				_ = m.Respond(protocol.Header{Type: "ANSWER"})
				_ = b.Publish(marker, protocol.Header{Type: "MARKER"})
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			_ = b.Flush(context.Background())
			_, heard := observe(t, e)
			msg := nats.NewMsg(served)
			msg.Reply = "reply." + string(role)
			msg.Data = []byte(`{"type":"ASK"}`)
			if err := internal.nc.PublishMsg(msg); err != nil {
				t.Fatal(err)
			}
			got = until(t, heard, marker)
			var answered bool
			for _, s := range got {
				answered = answered || s == msg.Reply
			}
			if answered != g.Respond {
				t.Errorf("answered a request: %v, want %v (saw %v)", answered, g.Respond, got)
			}
		})
	}
}

// matchesAny reports whether subject is matched by one of patterns.
func matchesAny(subject string, patterns []string) bool {
	for _, p := range patterns {
		if matches(subject, p) {
			return true
		}
	}
	return false
}

func matches(subject, pattern string) bool {
	st, pt := strings.Split(subject, "."), strings.Split(pattern, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) || (p != "*" && p != st[i]) {
			return false
		}
	}
	return len(st) == len(pt)
}

func TestPermissionsCoverEveryRole(t *testing.T) {
	for _, r := range Roles() {
		g, err := Permissions(r, testPlatform)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		if len(g.Publish) == 0 {
			t.Errorf("%s publishes nothing", r)
		}
		for _, s := range append(append([]string{}, g.Publish...), g.Subscribe...) {
			if s == ">" || strings.HasPrefix(s, InboxRoot) {
				t.Errorf("%s is granted %s: too wide", r, s)
			}
		}
	}
	if _, err := Permissions("root", ""); !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("unknown role: %v", err)
	}
	// Any platform: the table speaks of every platform's subjects.
	g, _ := Permissions(RoleMCU, "")
	if !matchesAny(protocol.SubjectRMSNodes("plat-z"), g.Publish) {
		t.Fatalf("mcu on any platform: %v", g.Publish)
	}
}
