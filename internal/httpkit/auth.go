package httpkit

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/protocol"
)

// Principal is who holds a request's token and what the token may do.
type Principal struct {
	// Holder names the token's holder (never the token).
	Holder string
	// Role is config.RoleOperator, config.RoleTenant or
	// config.RoleReadonly.
	Role string
	// Domains are a tenant's user domains.
	Domains []string
}

// Owns reports whether the token may act for user domain moid: any domain
// for an operator or readonly token, its own for a tenant.
func (p *Principal) Owns(moid string) bool {
	return p.Role != config.RoleTenant || slices.Contains(p.Domains, moid)
}

// token is an accepted bearer token: the hash of its secret and what it
// may do.
type token struct {
	sum [sha256.Size]byte
	Principal
}

// Tokens are the bearer tokens a server accepts. Only their hashes are
// kept.
type Tokens struct {
	list []token
}

// NewTokens builds the accepted tokens from the operator tokens (secret →
// holder) and the tokens with roles (api.tokens of the topology, whose
// tenant domains must be cfg's). At least one is needed; no two holders
// may share a token.
func NewTokens(operators map[string]string, grants []config.Token, cfg *config.Config) (*Tokens, error) {
	t := &Tokens{}
	seen := map[[sha256.Size]byte]string{}
	add := func(secret string, p Principal) error {
		if secret == "" {
			return fmt.Errorf("api: the token of %q is empty", p.Holder)
		}
		sum := sha256.Sum256([]byte(secret))
		if other, dup := seen[sum]; dup {
			return fmt.Errorf("api: tokens %q and %q are the same token: give each holder its own", other, p.Holder)
		}
		seen[sum] = p.Holder
		t.list = append(t.list, token{sum: sum, Principal: p})
		return nil
	}
	secrets := make([]string, 0, len(operators))
	for secret := range operators {
		secrets = append(secrets, secret)
	}
	sort.Strings(secrets) // the same order every start
	for _, secret := range secrets {
		if err := add(secret, Principal{Holder: operators[secret], Role: config.RoleOperator}); err != nil {
			return nil, err
		}
	}
	doms := map[string]bool{}
	if cfg != nil {
		for _, d := range cfg.Domains {
			doms[d.Moid] = true
		}
	}
	for _, g := range grants {
		if err := g.Validate(doms); err != nil {
			return nil, fmt.Errorf("api: %w", err)
		}
		p := Principal{Holder: g.Name, Role: g.RoleOrDefault()}
		if p.Role == config.RoleTenant {
			p.Domains = slices.Clone(g.Domains)
		}
		if err := add(g.Token, p); err != nil {
			return nil, err
		}
	}
	if len(t.list) == 0 {
		return nil, errors.New("api: no tokens: configure at least one under api.tokens")
	}
	return t, nil
}

// Authenticate finds the token of the request's Authorization header,
// comparing in constant time against every accepted token.
func (t *Tokens) Authenticate(r *http.Request) (*Principal, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return nil, false
	}
	sum := sha256.Sum256([]byte(tok))
	var found *Principal
	for i := range t.list {
		if subtle.ConstantTimeCompare(sum[:], t.list[i].sum[:]) == 1 {
			found = &t.list[i].Principal
		}
	}
	return found, found != nil
}

// Tenancy says whose an object is, for the checks of tenant tokens. The
// service that owns the objects implements it (the API, with its store).
type Tenancy interface {
	// Owner is the user domain of the conference (ScopeConference) or
	// template (ScopeTemplate) numbered e164, or the error to answer:
	// for one that does not exist, Hidden's.
	Owner(ctx context.Context, scope Scope, e164 string) (string, *codes.Error)
	// Hidden is the answer to a tenant asking for an object of scope
	// (conference, template or domain) named key that is not its own:
	// the very answer to one that does not exist, so that a tenant cannot
	// tell the two apart.
	Hidden(scope Scope, key string) *codes.Error
}

// access is what the checks learnt of a request, kept in its context.
type access struct {
	p       *Principal
	tenancy Tenancy
}

type accessKey struct{}

func withAccess(r *http.Request, a *access) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), accessKey{}, a))
}

// PrincipalOf is who holds the bearer token of a request served through a
// Handler (false when the request went through no check, or carries no
// valid token on a ScopeOpen route).
func PrincipalOf(r *http.Request) (*Principal, bool) {
	a, ok := r.Context().Value(accessKey{}).(*access)
	if !ok || a.p == nil {
		return nil, false
	}
	return a.p, true
}

// Holder names who holds the request's bearer token (PrincipalOf).
func Holder(r *http.Request) (string, bool) {
	p, ok := PrincipalOf(r)
	if !ok {
		return "", false
	}
	return p.Holder, true
}

// OwnDomain is the check of a ScopeBody route, once its handler has read
// the user domain the body names: another tenant's domain answers as one
// that does not exist. A request that went through no check (a handler
// called directly) passes.
func OwnDomain(r *http.Request, moid string) *codes.Error {
	a, ok := r.Context().Value(accessKey{}).(*access)
	switch {
	case !ok || a.p == nil || a.p.Owns(moid):
		return nil
	case a.tenancy == nil:
		return codes.Errorf(codes.Forbidden, "token %q may not act for user domain %q", a.p.Holder, moid)
	}
	return a.tenancy.Hidden(ScopeDomain, moid)
}

// writeUnauthorized answers a request without a valid token.
func writeUnauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="convene"`)
	WriteError(w, codes.Errorf(codes.Unauthorized, "send a valid token as \"Authorization: Bearer <token>\" (api.tokens in the configuration; `convene serve` writes one to .convene/token)"))
}

// authorize decides whether p may make request r on a route of scope.
func authorize(r *http.Request, p *Principal, scope Scope, tenancy Tenancy) *codes.Error {
	if p.Role == config.RoleReadonly && r.Method != http.MethodGet && r.Method != http.MethodHead {
		return codes.Errorf(codes.Forbidden, "token %q is read-only: it may read (GET) but not %s; use an operator or tenant token to change anything", p.Holder, r.Method)
	}
	if p.Role != config.RoleTenant {
		return nil
	}
	switch scope {
	case ScopeBody, ScopeOpen:
		return nil
	case ScopeDomain:
		if moid := r.PathValue("moid"); protocol.ValidToken(moid) && !p.Owns(moid) {
			return tenancy.Hidden(ScopeDomain, moid)
		}
		return nil
	case ScopeConference, ScopeTemplate:
		// A malformed number is left to the handler, which explains it.
		e164 := r.PathValue("e164")
		if !protocol.ValidE164(e164) {
			return nil
		}
		owner, err := tenancy.Owner(r.Context(), scope, e164)
		if err != nil {
			return err
		}
		if !p.Owns(owner) {
			return tenancy.Hidden(scope, e164)
		}
		return nil
	}
	return codes.Errorf(codes.Forbidden, "token %q acts for user domains %s only: %s %s is a platform operation; use an operator token",
		p.Holder, strings.Join(p.Domains, ", "), r.Method, r.URL.Path)
}
