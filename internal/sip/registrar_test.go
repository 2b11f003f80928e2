package sip

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/convene/convene/internal/sip/digest"
	"github.com/convene/convene/internal/testkit"
)

func TestRegisterWithEitherAlgorithm(t *testing.T) {
	e := start(t, setup{})
	e.subscriber("1001", "pw-1001")
	for _, a := range []digest.Algorithm{digest.SHA256, digest.MD5} {
		t.Run(string(a), func(t *testing.T) {
			p := newPhone(t, "1001", "pw-1001")
			res := p.register(e.a.UDPAddr(), a)
			if res.StatusCode != 200 {
				t.Fatalf("REGISTER answered %d", res.StatusCode)
			}
			var mine *sip.ContactHeader
			for _, h := range res.GetHeaders("Contact") {
				if c := h.(*sip.ContactHeader); c.Address.Port == p.laddr.Port {
					mine = c
				}
			}
			if mine == nil {
				t.Fatalf("200 does not list the phone's contact: %s", res)
			}
			if exp, _ := mine.Params.Get("expires"); exp != "300" {
				t.Fatalf("contact expires %q, want 300", exp)
			}
		})
	}
	if b := e.bindings("1001"); len(b) != 2 {
		t.Fatalf("%d bindings, want one per phone", len(b))
	}
}

// A challenge node A issued is answered through node B: the nonce is
// signed with the platform's key, its count kept in the platform store.
// The same count answered again, through either node, is a replay.
func TestChallengeOfOneNodeAnsweredThroughTheOther(t *testing.T) {
	e := start(t, setup{})
	e.subscriber("1001", "pw-1001")
	p := newPhone(t, "1001", "pw-1001")
	req := p.request(sip.REGISTER, sip.Uri{Scheme: "sip", Host: testDomain}, "cross-1")
	req.To().Address.User = "1001"
	res := p.send(req, e.a.UDPAddr())
	if res.StatusCode != 401 {
		t.Fatalf("first REGISTER: %d", res.StatusCode)
	}
	r := p.again(req)
	creds := p.credentials(res, r, digest.SHA256, 1)
	r.AppendHeader(sip.NewHeader("Authorization", creds))
	if got := p.send(r, e.b.UDPAddr()); got.StatusCode != 200 {
		t.Fatalf("answered through B: %d", got.StatusCode)
	}
	replay := p.again(req)
	replay.AppendHeader(sip.NewHeader("Authorization", creds))
	for _, node := range []*Node{e.a, e.b} {
		if got := p.send(p.again(replay), node.UDPAddr()); got.StatusCode != 401 {
			t.Fatalf("the same count again through %s: %d, want 401", node.Name(), got.StatusCode)
		}
	}
	next := p.again(req)
	next.AppendHeader(sip.NewHeader("Authorization", p.credentials(res, next, digest.SHA256, 2)))
	if got := p.send(next, e.a.UDPAddr()); got.StatusCode != 200 {
		t.Fatalf("the next count: %d", got.StatusCode)
	}
}

func TestRegisterRefusals(t *testing.T) {
	e := start(t, setup{tune: func(o *Options) { o.MinExpires = 2 * time.Second }})
	e.subscriber("1001", "pw-1001")
	e.subscriber("1002", "pw-1002")
	ctx := context.Background()
	if _, err := e.db.DisableSIPSubscriber(ctx, "1002"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		user string
		pass string
		mod  func(*sip.Request)
		want int
	}{
		{"wrong password", "1001", "guess", nil, 403},
		{"unknown user", "9999", "pw", nil, 403},
		{"disabled user", "1002", "pw-1002", nil, 403},
		{"another domain", "1001", "pw-1001", func(r *sip.Request) { r.Recipient.Host = "elsewhere.example" }, 403},
		{"interval too brief", "1001", "pw-1001", func(r *sip.Request) { r.ReplaceHeader(sip.NewHeader("Expires", "1")) }, 423},
		{"someone else's address", "1001", "pw-1001", func(r *sip.Request) { r.To().Address.User = "1003" }, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPhone(t, c.user, c.pass)
			req := p.request(sip.REGISTER, sip.Uri{Scheme: "sip", Host: testDomain}, "refuse-"+c.user)
			req.To().Address.User = c.user
			req.AppendHeader(sip.NewHeader("Expires", "300"))
			if c.mod != nil {
				c.mod(req)
			}
			if got := p.authed(req, e.a.UDPAddr(), digest.SHA256); got.StatusCode != c.want {
				t.Fatalf("answered %d %s, want %d", got.StatusCode, got.Reason, c.want)
			}
		})
	}
	if b := e.bindings("1001"); len(b) != 0 {
		t.Fatalf("refused registrations left %d bindings", len(b))
	}
	if b := e.bindings("1002"); len(b) != 0 {
		t.Fatalf("a disabled user registered")
	}
}

// A binding expires by itself, and Expires: 0 removes one at once.
func TestRegistrationsExpireAndAreRemoved(t *testing.T) {
	e := start(t, setup{tune: func(o *Options) { o.MinExpires = time.Second }})
	e.subscriber("1001", "pw-1001")
	p := newPhone(t, "1001", "pw-1001")
	req := p.request(sip.REGISTER, sip.Uri{Scheme: "sip", Host: testDomain}, "exp-1")
	req.To().Address.User = "1001"
	req.AppendHeader(sip.NewHeader("Expires", "1"))
	if res := p.authed(req, e.a.UDPAddr(), digest.MD5); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	if len(e.bindings("1001")) != 1 {
		t.Fatal("no binding")
	}
	testkit.AwaitWithin(t, 15*time.Second, "the binding to expire", func() bool { return len(e.bindings("1001")) == 0 })
	testkit.AwaitWithin(t, 15*time.Second, "the sweep to drop the record", func() bool {
		n, _ := e.st.Store.Client().Exists(context.Background(), "sip/reg/1001").Result()
		return n == 0
	})

	p2 := newPhone(t, "1001", "pw-1001")
	if res := p2.register(e.b.UDPAddr(), digest.SHA256); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	rm := p2.request(sip.REGISTER, sip.Uri{Scheme: "sip", Host: testDomain}, "exp-2")
	rm.To().Address.User = "1001"
	rm.AppendHeader(sip.NewHeader("Expires", "0"))
	if res := p2.authed(rm, e.a.UDPAddr(), digest.SHA256); res.StatusCode != 200 || res.Contact() != nil {
		t.Fatalf("removal: %d, contact %v", res.StatusCode, res.Contact())
	}
	if b := e.bindings("1001"); len(b) != 0 {
		t.Fatalf("left %v", b)
	}
}

func TestOptionsAnswered(t *testing.T) {
	e := start(t, setup{})
	p := newPhone(t, "anyone", "")
	for _, node := range []*Node{e.a, e.b} {
		res := p.send(p.request(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "127.0.0.1"}, "opt-"+node.Name()), node.UDPAddr())
		if res.StatusCode != 200 || res.GetHeader("Allow") == nil || !strings.Contains(res.GetHeader("Allow").Value(), "INVITE") {
			t.Fatalf("%s: OPTIONS answered %d %v", node.Name(), res.StatusCode, res.GetHeader("Allow"))
		}
	}
}
