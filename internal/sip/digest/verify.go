package digest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrReplay is what a Counter returns, wrapped, for a nonce count not
// higher than one used before with the nonce.
var ErrReplay = errors.New("digest: nonce count used before")

// Counter keeps the nonce counts used, for every node of the platform.
type Counter interface {
	// UseNonce accepts count nc of nonce once; a count not higher than
	// one accepted before is an error wrapping ErrReplay. The record may
	// go after until.
	UseNonce(ctx context.Context, nonce string, nc uint32, until time.Time) error
}

// Secrets finds a user's HA1 for an algorithm; ok is false for a user
// that is unknown or may not authenticate (disabled).
type Secrets func(ctx context.Context, user string, a Algorithm) (ha1 string, ok bool, err error)

// Outcome is what a check of credentials decided.
type Outcome int

const (
	// Authorized: the credentials are right and their nonce count new.
	Authorized Outcome = iota
	// Unauthenticated: no credentials for this realm, or ones that cannot be
	// checked (malformed, another algorithm, a nonce not issued here):
	// challenge the client.
	Unauthenticated
	// Stale: the credentials are right but their nonce too old:
	// challenge with stale=true.
	Stale
	// Replayed: the credentials are right but their nonce count was used
	// before: a replay, refused with a fresh challenge.
	Replayed
	// Forbidden: an unknown or disabled user, or a wrong password.
	Forbidden
)

func (o Outcome) String() string {
	switch o {
	case Authorized:
		return "authorized"
	case Unauthenticated:
		return "unauthenticated"
	case Stale:
		return "stale"
	case Replayed:
		return "replayed"
	case Forbidden:
		return "forbidden"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Verifier checks credentials for one realm.
type Verifier struct {
	Realm string
	// Algorithms offered, in order of preference; default SHA-256, MD5.
	Algorithms []Algorithm
	Nonces     *Nonces
	Counts     Counter
	Secrets    Secrets
}

func (v *Verifier) algorithms() []Algorithm {
	if len(v.Algorithms) == 0 {
		return []Algorithm{SHA256, MD5}
	}
	return v.Algorithms
}

// Challenges are the header values to challenge with, one per algorithm
// offered, most preferred first (RFC 8760 §2.4), on one fresh nonce.
func (v *Verifier) Challenges(stale bool) []string {
	nonce := v.Nonces.New()
	out := make([]string, 0, len(v.algorithms()))
	for _, a := range v.algorithms() {
		out = append(out, Challenge{Realm: v.Realm, Nonce: nonce, Algorithm: a, Stale: stale}.String())
	}
	return out
}

// Check checks the credentials among headers (the values of every
// Authorization or Proxy-Authorization header of a request) for this
// realm, for a request of method. It returns the user they name and what
// to do. A count is used (Counts) only once the password was found right.
func (v *Verifier) Check(ctx context.Context, method string, headers []string) (user string, out Outcome, err error) {
	var c Credentials
	found := false
	for _, h := range headers {
		cr, err := ParseCredentials(h)
		if err == nil && cr.Realm == v.Realm {
			c, found = cr, true
			break
		}
	}
	if !found {
		return "", Unauthenticated, nil
	}
	alg, ok := ParseAlgorithm(c.Algorithm)
	if !ok || !v.offers(alg) || !strings.EqualFold(c.QOP, "auth") || c.CNonce == "" || c.Count == 0 {
		return c.Username, Unauthenticated, nil
	}
	issued, nerr := v.Nonces.Check(c.Nonce)
	if errors.Is(nerr, ErrNonceInvalid) {
		return c.Username, Unauthenticated, nil
	}
	ha1, ok, err := v.Secrets(ctx, c.Username, alg)
	if err != nil {
		return c.Username, Unauthenticated, err
	}
	if !ok {
		return c.Username, Forbidden, nil
	}
	if !equal(c.Response, Response(alg, ha1, c.Nonce, c.NC, c.CNonce, "auth", method, c.URI)) {
		return c.Username, Forbidden, nil
	}
	if nerr != nil {
		return c.Username, Stale, nil
	}
	if err := v.Counts.UseNonce(ctx, c.Nonce, c.Count, issued.Add(v.Nonces.TTL())); err != nil {
		if errors.Is(err, ErrReplay) {
			return c.Username, Replayed, nil
		}
		return c.Username, Unauthenticated, err
	}
	return c.Username, Authorized, nil
}

func (v *Verifier) offers(a Algorithm) bool {
	for _, o := range v.algorithms() {
		if o == a {
			return true
		}
	}
	return false
}
