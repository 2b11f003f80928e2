package bus

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A provider runs the embedded server with its credentials on disk; a
// provider of an external bus (that server, over TCP) connects with the
// role files it wrote; roles keep their permissions either way.
func TestProviderEmbeddedAndExternal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "creds")
	emb, err := NewProvider(ProviderOptions{Listen: "127.0.0.1:0", CredsDir: dir, Platform: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	if emb.External() || emb.URL() == "" || emb.Creds().Dir() != dir {
		t.Fatalf("embedded: external %v, url %q, creds in %q", emb.External(), emb.URL(), emb.Creds().Dir())
	}
	ext, err := NewProvider(ProviderOptions{URL: emb.URL(), Creds: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !ext.External() || ext.URL() != emb.URL() {
		t.Fatalf("external: %v %q", ext.External(), ext.URL())
	}
	for _, p := range []*Provider{emb, ext} {
		host, err := p.Connect(RoleHost, "host-test")
		if err != nil {
			t.Fatal(err)
		}
		rms, err := p.Connect(RoleRMS, "rms-test")
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		sub, err := host.Subscribe("host.status.p1", HandlerFunc(func(_ context.Context, m *Msg) { got <- m.Subject }))
		if err != nil {
			t.Fatal(err)
		}
		if err := host.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		// RMS may not publish on the hosts' subjects; the host role may.
		_ = rms.Publish("host.status.p1", map[string]string{"type": "X"})
		_ = rms.Flush(context.Background())
		if err := host.Publish("host.status.p1", map[string]string{"type": "X"}); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-got:
			if s != "host.status.p1" {
				t.Fatal(s)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the host role's message did not arrive")
		}
		select {
		case <-got:
			t.Fatal("a second message: RMS published on a host subject")
		case <-time.After(100 * time.Millisecond):
		}
		_ = sub.Unsubscribe()
		host.Close()
		rms.Close()
	}
	if ev, err := ext.Events("events", nil); ev != nil || err != nil {
		t.Fatalf("an external bus gave connection events: %v %v", ev, err)
	}
	if err := ext.Restart(); err == nil {
		t.Fatal("an external bus restarted")
	}
}

// Connections over TCP outlive a restart of the embedded server.
func TestProviderRestartOverTCP(t *testing.T) {
	p, err := NewProvider(ProviderOptions{Listen: "127.0.0.1:0", OverTCP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b, err := p.Connect(RoleInternal, "survivor")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	url := p.URL()
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	if p.URL() != url {
		t.Fatalf("restarted on %s, was %s", p.URL(), url)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.Flush(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the connection did not come back")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Settings that do not go together are refused with what to do.
func TestProviderRefuses(t *testing.T) {
	for _, c := range []struct {
		o    ProviderOptions
		want string
	}{
		{ProviderOptions{URL: "nats://127.0.0.1:1", Listen: "127.0.0.1:0"}, "takes no embedded settings"},
		{ProviderOptions{Creds: "x.creds"}, "are for an external bus"},
		{ProviderOptions{OverTCP: true}, "give it a listen address"},
		{ProviderOptions{Listen: "nowhere"}, "listen address"},
	} {
		_, err := NewProvider(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	_, err := NewProvider(ProviderOptions{URL: "nats://127.0.0.1:1", Creds: filepath.Join(t.TempDir(), "none")})
	if !errors.Is(err, ErrNoCredential) {
		t.Errorf("missing creds: %v", err)
	}
}
