package faultproxy_test

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convene/convene/internal/faultproxy"
	"github.com/convene/convene/internal/redistest"
)

// setup starts a redis-server, a proxy in front of it, a client through
// the proxy that never retries, and one straight to the server.
func setup(t *testing.T) (p *faultproxy.Proxy, via, direct *redis.Client) {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	p, err := faultproxy.Start(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	via = redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1, ReadTimeout: 10 * time.Second, Protocol: 2, DisableIdentity: true})
	direct = redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { via.Close(); direct.Close() })
	return p, via, direct
}

func TestDropReplyRunsTheCommandUnseen(t *testing.T) {
	p, via, direct := setup(t)
	ctx := context.Background()
	p.Inject(faultproxy.Fault{Command: "incr", Action: faultproxy.DropReply})
	if err := via.Incr(ctx, "n").Err(); err == nil {
		t.Fatal("the client heard a reply that was to be dropped")
	}
	if n, err := direct.Get(ctx, "n").Int(); err != nil || n != 1 {
		t.Fatalf("the server holds n = %d, %v; want the command run once", n, err)
	}
	if n, err := via.Incr(ctx, "n").Result(); err != nil || n != 2 {
		t.Fatalf("the next INCR answered %d, %v", n, err)
	}
	if p.Hits(faultproxy.DropReply) != 1 || p.Pending() != 0 {
		t.Fatalf("hits %d, pending %d", p.Hits(faultproxy.DropReply), p.Pending())
	}
}

func TestResetKeepsTheCommandFromTheServer(t *testing.T) {
	p, via, direct := setup(t)
	ctx := context.Background()
	p.Inject(faultproxy.Fault{Command: "SET", Action: faultproxy.Reset})
	if err := via.Set(ctx, "k", "v", 0).Err(); err == nil {
		t.Fatal("a reset command answered")
	}
	if n := direct.Exists(ctx, "k").Val(); n != 0 {
		t.Fatal("a reset command reached the server")
	}
	if err := via.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestDelaysPassEverything(t *testing.T) {
	p, via, _ := setup(t)
	ctx := context.Background()
	p.Inject(faultproxy.Fault{Command: "SET", Action: faultproxy.DelayCommand, Delay: 20 * time.Millisecond})
	p.Inject(faultproxy.Fault{Command: "GET", Action: faultproxy.DelayReply, Delay: 20 * time.Millisecond})
	if err := via.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := via.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET = %q, %v", v, err)
	}
	if p.Hits(faultproxy.DelayCommand) != 1 || p.Hits(faultproxy.DelayReply) != 1 {
		t.Fatalf("delays hit %d and %d", p.Hits(faultproxy.DelayCommand), p.Hits(faultproxy.DelayReply))
	}
}

// Every picks every k-th matching command; other commands do not count.
func TestEveryAndTimes(t *testing.T) {
	p, via, _ := setup(t)
	ctx := context.Background()
	p.Inject(faultproxy.Fault{Command: "GET", Action: faultproxy.DropReply, Every: 2, Times: 2})
	var failed []int
	for i := 1; i <= 6; i++ {
		via.Ping(ctx)
		if err := via.Get(ctx, "missing").Err(); err != nil && err != redis.Nil {
			failed = append(failed, i)
		}
	}
	if len(failed) != 2 || failed[0] != 2 || failed[1] != 4 {
		t.Fatalf("GETs that failed: %v, want [2 4]", failed)
	}
	if p.Commands("get") != 6 {
		t.Fatalf("the proxy saw %d GETs", p.Commands("get"))
	}
}

func TestResetAllAndClose(t *testing.T) {
	p, _, _ := setup(t)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("inline PING answered %q, %v", line, err)
	}
	p.ResetAll()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("a reset connection still reads")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("a closed proxy still accepts")
	}
}
