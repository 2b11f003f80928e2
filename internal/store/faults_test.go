package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/convene/convene/internal/faultproxy"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

// behindProxy runs f against each server kind with a store that reaches it
// through a fault proxy, and one that reaches it straight, to look.
func behindProxy(t *testing.T, f func(t *testing.T, s, direct *store.Store, p *faultproxy.Proxy)) {
	run := func(t *testing.T, addr, url string) {
		p, err := faultproxy.Start(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		s, err := store.Open(context.Background(), store.Options{URL: "redis://" + p.Addr()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.LoadScripts(context.Background()); err != nil {
			t.Fatal(err)
		}
		f(t, s, testkit.OpenStore(t, url), p)
	}
	t.Run("embedded", func(t *testing.T) {
		e, err := store.StartEmbedded("")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		run(t, e.Addr(), e.URL())
	})
	t.Run("redis-server", func(t *testing.T) {
		r := redistest.Start(t, redistest.Options{})
		run(t, r.Addr(), r.URL())
	})
}

// Every write whose reply is lost after the server ran it is sent again
// and answered as its first run: applied once, and the caller told what
// happened.
func TestLostReplyAppliesOnce(t *testing.T) {
	type env struct {
		t         *testing.T
		s, direct *store.Store
	}
	ctx := context.Background()
	running := func(e env, e164 string) {
		e.t.Helper()
		if _, err := e.direct.Reserve(ctx, reservation("acme", e164)); err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.direct.Commit(ctx, store.Placement{E164: e164, Node: "n1", Room: "r1"}); err != nil {
			e.t.Fatal(err)
		}
	}
	conf := func(e env, e164 string) protocol.Conference {
		e.t.Helper()
		c, err := e.direct.Conference(ctx, e164)
		if err != nil {
			e.t.Fatal(err)
		}
		return c
	}
	inUse := func(e env) int {
		u, err := e.direct.License(ctx, "acme")
		if err != nil {
			e.t.Fatal(err)
		}
		return u.InUse["8_720p"]
	}
	cases := []struct {
		name  string
		prep  func(e env)
		op    func(e env) error
		check func(e env)
	}{
		{name: "reserve with a new number", op: func(e env) error {
			_, err := e.s.Reserve(ctx, reservation("acme", ""))
			return err
		}, check: func(e env) {
			if states, _ := e.direct.DomainStates(ctx, "acme"); len(states) != 1 || inUse(e) != 1 {
				e.t.Fatalf("one create left %d conferences, %d counted: %v", len(states), inUse(e), states)
			}
		}},
		{name: "reserve with a given number", op: func(e env) error {
			_, err := e.s.Reserve(ctx, reservation("acme", "6610001"))
			return err
		}, check: func(e env) {
			if c := conf(e, "6610001"); c.State != "creating" || inUse(e) != 1 {
				e.t.Fatalf("conference %+v, %d counted", c, inUse(e))
			}
		}},
		{name: "commit", prep: func(e env) {
			if _, err := e.direct.Reserve(ctx, reservation("acme", "6610002")); err != nil {
				e.t.Fatal(err)
			}
		}, op: func(e env) error {
			_, err := e.s.Commit(ctx, store.Placement{E164: "6610002", Node: "n1"})
			return err
		}, check: func(e env) {
			if c := conf(e, "6610002"); c.State != "running" {
				e.t.Fatalf("conference %+v", c)
			}
		}},
		{name: "delay", prep: func(e env) { running(e, "6610003") }, op: func(e env) error {
			_, dur, err := e.s.Delay(ctx, "6610003", 15)
			if err == nil && dur != 75 {
				return errors.New("the delay answered a length other than 75")
			}
			return err
		}, check: func(e env) {
			if c := conf(e, "6610003"); c.DurationMinutes != 75 {
				e.t.Fatalf("a 15-minute delay of 60 minutes left %d", c.DurationMinutes)
			}
		}},
		{name: "release", prep: func(e env) { running(e, "6610004") }, op: func(e env) error {
			_, err := e.s.Release(ctx, "6610004", store.ReleaseCond{})
			return err
		}, check: func(e env) {
			assertEmpty(e.t, e.direct, "acme", "6610004", "n1")
			if inUse(e) != 0 {
				e.t.Fatalf("%d counted after the end", inUse(e))
			}
		}},
		{name: "monitor removal", prep: func(e env) {
			running(e, "6610005")
			if err := e.direct.AddMonitor(ctx, "6610005", "10.0.0.1:9", 1); err != nil {
				e.t.Fatal(err)
			}
		}, op: func(e env) error { return e.s.RemoveMonitor(ctx, "6610005", "10.0.0.1:9") }, check: func(e env) {
			if m, _ := e.direct.Monitors(ctx, "6610005"); len(m) != 0 {
				e.t.Fatalf("monitors %v", m)
			}
		}},
		{name: "template create", op: func(e env) error {
			_, err := e.s.CreateTemplate(ctx, protocol.Template{E164: "6610006", Name: "t", Domain: "acme"}, numbering)
			return err
		}, check: func(e env) {
			if tpl, err := e.direct.Template(ctx, "6610006"); err != nil || tpl.Name != "t" {
				e.t.Fatalf("template %+v, %v", tpl, err)
			}
		}},
		{name: "template delete", prep: func(e env) {
			if _, err := e.direct.CreateTemplate(ctx, protocol.Template{E164: "6610007", Name: "t", Domain: "acme"}, numbering); err != nil {
				e.t.Fatal(err)
			}
		}, op: func(e env) error { return e.s.DeleteTemplate(ctx, "6610007") }, check: func(e env) {
			if _, err := e.direct.Template(ctx, "6610007"); !errors.Is(err, store.ErrTemplateNotFound) {
				e.t.Fatalf("template after delete: %v", err)
			}
		}},
		{name: "pend", prep: func(e env) { running(e, "6610008") }, op: func(e env) error {
			moved, skipped, err := e.s.Pend(ctx, "n1", "node lost", []string{"6610008"}, nil)
			if err == nil && len(moved) != 1 {
				return errors.Join(errors.New("pend moved nothing"), skipped["6610008"])
			}
			return err
		}, check: func(e env) {
			if c := conf(e, "6610008"); c.State != "pending-restore" {
				e.t.Fatalf("conference %+v", c)
			}
		}},
		{name: "begin restore", prep: func(e env) {
			running(e, "6610009")
			if err := e.direct.PendOne(ctx, "6610009", "n1", "node lost"); err != nil {
				e.t.Fatal(err)
			}
		}, op: func(e env) error {
			_, _, err := e.s.BeginRestore(ctx, "6610009", "n2", "r2")
			return err
		}, check: func(e env) {
			if c := conf(e, "6610009"); c.State != "creating" || c.Node != "n2" {
				e.t.Fatalf("conference %+v", c)
			}
		}},
		{name: "failed restore", prep: func(e env) {
			running(e, "6610010")
			if err := e.direct.PendOne(ctx, "6610010", "n1", "node lost"); err != nil {
				e.t.Fatal(err)
			}
			if _, _, err := e.direct.BeginRestore(ctx, "6610010", "n2", "r2"); err != nil {
				e.t.Fatal(err)
			}
		}, op: func(e env) error { return e.s.FailRestore(ctx, "6610010", "n2", "NODE_TIMEOUT") }, check: func(e env) {
			if c := conf(e, "6610010"); c.State != "pending-restore" || c.RestoreAttempts != 1 {
				e.t.Fatalf("conference %+v", c)
			}
		}},
		{name: "adopt", prep: func(e env) {
			running(e, "6610011")
			if err := e.direct.PendOne(ctx, "6610011", "n1", "node lost"); err != nil {
				e.t.Fatal(err)
			}
		}, op: func(e env) error { return e.s.Adopt(ctx, "6610011", "n1") }, check: func(e env) {
			if c := conf(e, "6610011"); c.State != "running" {
				e.t.Fatalf("conference %+v", c)
			}
		}},
		{name: "breakout change", prep: func(e env) { running(e, "6610012") }, op: func(e env) error {
			v, err := e.s.ApplyBreakout(ctx, store.BreakoutChange{E164: "6610012", Conf: "running", Meta: []byte("{}"), Now: 1})
			if err == nil && v != 1 {
				return errors.New("the first breakout change answered a version other than 1")
			}
			return err
		}, check: func(e env) {
			if h, _ := e.direct.BreakoutHead(ctx, "6610012"); h.Version != 1 {
				e.t.Fatalf("breakout version %d", h.Version)
			}
		}},
		{name: "domain publish", op: func(e env) error {
			changed, err := e.s.PublishDomain(ctx, store.DomainInfo{Moid: "fresh", Used: true}, license.Limits{"8_720p": 3})
			if err == nil && !changed {
				return errors.New("the first publication answered that the limits were written before")
			}
			return err
		}, check: func(e env) {
			if u, _ := e.direct.License(ctx, "fresh"); u.Limits["8_720p"] != 3 {
				e.t.Fatalf("limits %v", u.Limits)
			}
		}},
		{name: "lease", op: func(e env) error { return e.s.AcquireLease(ctx, "p1", "a", time.Minute) }, check: func(e env) {
			if err := e.direct.AcquireLease(ctx, "p1", "b", time.Minute); !errors.Is(err, store.ErrLeaseHeld) {
				e.t.Fatalf("another took the lease: %v", err)
			}
		}},
	}
	behindProxy(t, func(t *testing.T, s, direct *store.Store, p *faultproxy.Proxy) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				for _, k := range []string{"domain/acme/info", "domain/acme/license", "domain/acme/confs"} {
					direct.Client().Del(ctx, k)
				}
				publish(t, direct, "acme", license.Limits{"8_720p": 10})
				e := env{t: t, s: s, direct: direct}
				if c.prep != nil {
					c.prep(e)
				}
				dropped := p.Hits(faultproxy.DropReply)
				p.Inject(faultproxy.Fault{Command: "EVALSHA", Action: faultproxy.DropReply})
				err := c.op(e)
				p.Clear()
				if p.Hits(faultproxy.DropReply) != dropped+1 {
					t.Fatal("no reply was dropped")
				}
				if err != nil {
					t.Fatalf("a write whose reply was lost answered %v", err)
				}
				c.check(e)
			})
		}
	})
}
