package digest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// RFC 7616 §3.9.1: the same request answered with MD5 and SHA-256.
func TestResponseKnownAnswers(t *testing.T) {
	const (
		user, realm, pass = "Mufasa", "http-auth@example.org", "Circle of Life"
		nonce             = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
		cnonce            = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
	)
	for _, c := range []struct {
		a    Algorithm
		want string
	}{
		{MD5, "8ca523f5e9506fed4657c9700eebdbec"},
		{SHA256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	} {
		t.Run(string(c.a), func(t *testing.T) {
			got := Response(c.a, HA1(c.a, user, realm, pass), nonce, "00000001", cnonce, "auth", "GET", "/dir/index.html")
			if got != c.want {
				t.Fatalf("response %s, want %s", got, c.want)
			}
		})
	}
}

func TestParseCredentials(t *testing.T) {
	good := `Digest username="1001", realm="sip.example", nonce="abc", uri="sip:example", response="0123", ` +
		`algorithm=SHA-256, cnonce="c\"n", qop=auth, nc=0000000a, opaque=""`
	c, err := ParseCredentials(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.Username != "1001" || c.Realm != "sip.example" || c.CNonce != `c"n` || c.Count != 10 || c.QOP != "auth" || c.Algorithm != "SHA-256" {
		t.Fatalf("parsed %+v", c)
	}
	for name, v := range map[string]string{
		"basic scheme":      `Basic dXNlcjpwYXNz`,
		"no response":       `Digest username="u", realm="r", nonce="n"`,
		"unclosed quote":    `Digest username="u, realm="r", nonce="n", response="x"`,
		"bare name":         `Digest username, realm="r", nonce="n", response="x"`,
		"twice":             `Digest username="u", username="v", realm="r", nonce="n", response="x"`,
		"nc not hex":        `Digest username="u", realm="r", nonce="n", response="x", nc=zz000001`,
		"nc of 7 digits":    `Digest username="u", realm="r", nonce="n", response="x", nc=0000001`,
		"too long":          `Digest username="` + strings.Repeat("u", maxHeader) + `"`,
		"empty":             ``,
		"only the scheme":   `Digest`,
		"empty param value": `Digest username=, realm="r", nonce="n", response="x"`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseCredentials(v); err == nil {
				t.Fatalf("%q parsed", v)
			}
		})
	}
}

func FuzzParseCredentials(f *testing.F) {
	f.Add(`Digest username="1001", realm="r", nonce="n", uri="sip:x", response="00", qop=auth, nc=00000001, cnonce="c"`)
	f.Add(`Digest username="a\"b", realm=r`)
	f.Add(`digest  ,,, =`)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCredentials(s)
		if err != nil {
			return
		}
		if c.Username == "" || c.Realm == "" || c.Nonce == "" || c.Response == "" {
			t.Fatalf("accepted credentials without a required parameter: %+v", c)
		}
		// What a challenge renders parses back as the same parameters.
		ch := Challenge{Realm: c.Realm, Nonce: c.Nonce, Algorithm: SHA256, Opaque: c.Opaque}.String()
		p, err := parseParams(strings.TrimPrefix(ch, "Digest "))
		if err != nil || p["realm"] != c.Realm || p["nonce"] != c.Nonce {
			t.Fatalf("challenge %q read back as %v (%v)", ch, p, err)
		}
	})
}

func TestNonces(t *testing.T) {
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	a := NewNonces([]byte("key"), time.Minute)
	a.now = func() time.Time { return now }
	n := a.New()
	if issued, err := a.Check(n); err != nil || !issued.Equal(now) {
		t.Fatalf("fresh nonce: %v, %v", issued, err)
	}
	// Another node with the same key checks it; one with another key does not.
	b := NewNonces([]byte("key"), time.Minute)
	b.now = a.now
	if _, err := b.Check(n); err != nil {
		t.Fatalf("a node with the same key: %v", err)
	}
	other := NewNonces([]byte("other"), time.Minute)
	if _, err := other.Check(n); err != ErrNonceInvalid {
		t.Fatalf("a node with another key: %v", err)
	}
	// A changed byte breaks the signature.
	forged := []byte(n)
	forged[3] ^= 1
	if forged[3] == '-' || forged[3] == '_' {
		forged[3] = 'A'
	}
	if _, err := a.Check(string(forged)); err != ErrNonceInvalid {
		t.Fatalf("forged nonce: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := a.Check(n); err != ErrNonceStale {
		t.Fatalf("old nonce: %v", err)
	}
}

type memCounter struct {
	mu   sync.Mutex
	seen map[string]uint32
}

func (m *memCounter) UseNonce(_ context.Context, nonce string, nc uint32, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]uint32{}
	}
	if nc <= m.seen[nonce] {
		return fmt.Errorf("%w: %d", ErrReplay, nc)
	}
	m.seen[nonce] = nc
	return nil
}

func verifier(now *time.Time) (*Verifier, *memCounter) {
	n := NewNonces([]byte("k"), time.Minute)
	n.now = func() time.Time { return *now }
	counts := &memCounter{}
	users := map[string]string{"1001": "secret"}
	return &Verifier{Realm: "sip.test", Nonces: n, Counts: counts,
		Secrets: func(_ context.Context, user string, a Algorithm) (string, bool, error) {
			p, ok := users[user]
			if !ok {
				return "", false, nil
			}
			return HA1(a, user, "sip.test", p), true, nil
		}}, counts
}

// answer computes credentials for challenge ch as a client would.
func answer(a Algorithm, user, pass, realm, nonce, method, uri string, nc uint32) string {
	ncs := fmt.Sprintf("%08x", nc)
	resp := Response(a, HA1(a, user, realm, pass), nonce, ncs, "cn0", "auth", method, uri)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=%s, cnonce="cn0"`,
		user, realm, nonce, uri, resp, a, ncs)
}

func TestVerifier(t *testing.T) {
	now := time.Now()
	v, _ := verifier(&now)
	ctx := context.Background()
	ch := v.Challenges(false)
	if len(ch) != 2 || !strings.Contains(ch[0], "algorithm=SHA-256") || !strings.Contains(ch[1], "algorithm=MD5") {
		t.Fatalf("challenges %q: want SHA-256 then MD5", ch)
	}
	c, err := ParseCredentials(strings.Replace(ch[0], `qop="auth"`, `username="x", response="y"`, 1))
	if err != nil {
		t.Fatal(err)
	}
	nonce := c.Nonce

	check := func(name string, want Outcome, headers ...string) {
		t.Helper()
		_, got, err := v.Check(ctx, "REGISTER", headers)
		if err != nil || got != want {
			t.Fatalf("%s: %v (%v), want %v", name, got, err, want)
		}
	}
	for _, a := range []Algorithm{SHA256, MD5} {
		t.Run(string(a), func(t *testing.T) {
			nonce := v.Nonces.New()
			check("right password", Authorized, answer(a, "1001", "secret", "sip.test", nonce, "REGISTER", "sip:sip.test", 1))
			check("the same count again", Replayed, answer(a, "1001", "secret", "sip.test", nonce, "REGISTER", "sip:sip.test", 1))
			check("the next count", Authorized, answer(a, "1001", "secret", "sip.test", nonce, "REGISTER", "sip:sip.test", 2))
			check("wrong password", Forbidden, answer(a, "1001", "guess", "sip.test", nonce, "REGISTER", "sip:sip.test", 3))
			check("unknown user", Forbidden, answer(a, "1002", "secret", "sip.test", nonce, "REGISTER", "sip:sip.test", 3))
			check("another method", Forbidden, answer(a, "1001", "secret", "sip.test", nonce, "INVITE", "sip:sip.test", 3))
		})
	}
	check("no credentials", Unauthenticated)
	check("another realm", Unauthenticated, answer(MD5, "1001", "secret", "elsewhere", nonce, "REGISTER", "sip:x", 1))
	check("a nonce not issued here", Unauthenticated, answer(MD5, "1001", "secret", "sip.test", "bogus", "REGISTER", "sip:x", 1))
	check("malformed", Unauthenticated, `Digest username=`)
	noqop := strings.Replace(answer(MD5, "1001", "secret", "sip.test", nonce, "REGISTER", "sip:x", 1), "qop=auth, ", "", 1)
	check("no qop", Unauthenticated, noqop)
	// Of several headers, the one for this realm counts.
	check("ours among others", Authorized,
		answer(MD5, "1001", "secret", "elsewhere", nonce, "REGISTER", "sip:x", 1),
		answer(MD5, "1001", "secret", "sip.test", nonce, "REGISTER", "sip:x", 1))

	now = now.Add(2 * time.Minute)
	check("stale", Stale, answer(SHA256, "1001", "secret", "sip.test", nonce, "REGISTER", "sip:x", 5))
	check("stale, wrong password", Forbidden, answer(SHA256, "1001", "nope", "sip.test", nonce, "REGISTER", "sip:x", 5))
}

// Only a verifier offering an algorithm accepts it.
func TestVerifierOffersWhatItIsTold(t *testing.T) {
	now := time.Now()
	v, _ := verifier(&now)
	v.Algorithms = []Algorithm{SHA256}
	if ch := v.Challenges(true); len(ch) != 1 || !strings.HasSuffix(ch[0], "stale=true") {
		t.Fatalf("challenges %q", ch)
	}
	_, got, _ := v.Check(context.Background(), "INVITE", []string{answer(MD5, "1001", "secret", "sip.test", v.Nonces.New(), "INVITE", "sip:x", 1)})
	if got != Unauthenticated {
		t.Fatalf("MD5 to a SHA-256-only verifier: %v", got)
	}
}
