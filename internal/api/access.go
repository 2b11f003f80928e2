package api

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

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// Who may do what. Every bearer token has a role (config.Role*):
//
//   - operator: everything.
//   - tenant: only its own user domains: their conferences (and what hangs
//     off them: monitoring, breakout rooms), their templates and the view
//     of their licence. Another domain's conference, template or domain
//     answers 404 exactly as if it did not exist; platform-wide routes
//     answer 403 FORBIDDEN.
//   - readonly: GET (and HEAD) of every route an operator may read; any
//     other method answers 403 FORBIDDEN.
//
// Each route says what it acts on (its Scope); authorize decides from the
// token's role and the scope before the handler runs.

// ErrForbidden is the code of a request the token's role may not make.
const ErrForbidden = "FORBIDDEN"

func init() { statusOf[ErrForbidden] = http.StatusForbidden }

// Scope says what a route acts on, which decides who may use it.
type Scope int

const (
	// ScopePlatform is the platform as a whole (nodes, rooms, platforms,
	// the registry, events, licence limits): operator tokens, and readonly
	// tokens for reads; tenant tokens get 403 FORBIDDEN. It is the zero
	// value: a route that says nothing is closed to tenants.
	ScopePlatform Scope = iota
	// ScopeConference is the conference numbered {e164} in the path. A
	// tenant token may use it for a conference of its domains; any other
	// number answers 404 CONF_NOT_FOUND, as if no such conference existed.
	ScopeConference
	// ScopeDomain is the user domain {moid} of the path. A tenant token
	// may use it for its domains; another answers 404 DOMAIN_NOT_FOUND.
	ScopeDomain
	// ScopeTemplate is the template numbered {e164} in the path. A tenant
	// token may use it for a template of its domains; another answers 404
	// TEMPLATE_NOT_FOUND.
	ScopeTemplate
	// ScopeBody is the user domain the request body names: the handler
	// checks it once the body is read (the API's own routes only).
	ScopeBody
	// ScopeOpen needs no token (health, metrics; the API's own routes
	// only: a mounted route that authenticates itself sets Route.Open).
	ScopeOpen
)

var scopeNames = map[Scope]string{
	ScopePlatform: "platform", ScopeConference: "conference", ScopeDomain: "domain",
	ScopeTemplate: "template", ScopeBody: "body", ScopeOpen: "open",
}

func (s Scope) String() string {
	if n, ok := scopeNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Scope(%d)", int(s))
}

// RouteInfo is a route the server serves and what it acts on.
type RouteInfo struct {
	Pattern string
	Scope   Scope
	// Open: no bearer token is asked for (ScopeOpen, or a mounted route
	// that authenticates requests itself).
	Open bool
}

// RouteTable lists every route the server serves, its own and those
// mounted (Deps.Routes), sorted by pattern.
func (s *Server) RouteTable() []RouteInfo {
	var out []RouteInfo
	for _, rt := range s.ownRoutes() {
		out = append(out, RouteInfo{Pattern: rt.pattern, Scope: rt.scope, Open: rt.scope == ScopeOpen})
	}
	for _, rt := range s.mounted {
		out = append(out, RouteInfo{Pattern: rt.Pattern, Scope: rt.Scope, Open: rt.Open})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pattern < out[j].Pattern })
	return out
}

// principal is who holds a request's token and what the token may do.
type principal struct {
	holder  string
	role    string
	domains []string // a tenant's user domains
}

// owns reports whether the token may act for user domain moid.
func (p *principal) owns(moid string) bool {
	return p.role != config.RoleTenant || slices.Contains(p.domains, moid)
}

// token is an accepted bearer token: the hash of its secret and what it
// may do.
type token struct {
	sum [sha256.Size]byte
	principal
}

// newTokens builds the accepted tokens from the operator tokens
// (secret → holder) and the tokens with roles.
func newTokens(operators map[string]string, grants []config.Token, cfg *config.Config) ([]token, error) {
	var out []token
	seen := map[[sha256.Size]byte]string{}
	add := func(secret string, p principal) error {
		if secret == "" {
			return fmt.Errorf("api: the token of %q is empty", p.holder)
		}
		sum := sha256.Sum256([]byte(secret))
		if other, dup := seen[sum]; dup {
			return fmt.Errorf("api: tokens %q and %q are the same token: give each holder its own", other, p.holder)
		}
		seen[sum] = p.holder
		out = append(out, token{sum: sum, principal: p})
		return nil
	}
	secrets := make([]string, 0, len(operators))
	for secret := range operators {
		secrets = append(secrets, secret)
	}
	sort.Strings(secrets) // the same order every start
	for _, secret := range secrets {
		if err := add(secret, principal{holder: operators[secret], role: config.RoleOperator}); err != nil {
			return nil, err
		}
	}
	doms := map[string]bool{}
	for _, d := range cfg.Domains {
		doms[d.Moid] = true
	}
	for _, g := range grants {
		if err := g.Validate(doms); err != nil {
			return nil, fmt.Errorf("api: %w", err)
		}
		p := principal{holder: g.Name, role: g.RoleOrDefault()}
		if p.role == config.RoleTenant {
			p.domains = slices.Clone(g.Domains)
		}
		if err := add(g.Token, p); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errors.New("api: no tokens: configure at least one under api.tokens")
	}
	return out, nil
}

// authenticate finds the token of the request, comparing in constant
// time against every accepted token.
func (s *Server) authenticate(r *http.Request) (*principal, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return nil, false
	}
	sum := sha256.Sum256([]byte(tok))
	var found *principal
	for i := range s.tokens {
		if subtle.ConstantTimeCompare(sum[:], s.tokens[i].sum[:]) == 1 {
			found = &s.tokens[i].principal
		}
	}
	return found, found != nil
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="convene"`)
	writeError(w, errorf(protocol.ErrUnauthorized, "send a valid token as \"Authorization: Bearer <token>\" (api.tokens in the configuration; `convene serve` writes one to .convene/token)"))
}

type principalKey struct{}

// withPrincipal records who holds the request's token.
func withPrincipal(r *http.Request, p *principal) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
}

// principalOf is who holds the request's token; an operator when the
// request went through no check (tests calling a handler directly).
func principalOf(r *http.Request) *principal {
	if p, ok := r.Context().Value(principalKey{}).(*principal); ok {
		return p
	}
	return &principal{role: config.RoleOperator}
}

// authorize decides whether p may make request r on a route of scope.
func (s *Server) authorize(r *http.Request, p *principal, scope Scope) *apiError {
	if p.role == config.RoleReadonly && r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(ErrForbidden, "token %q is read-only: it may read (GET) but not %s; use an operator or tenant token to change anything", p.holder, r.Method)
	}
	if p.role != config.RoleTenant {
		return nil
	}
	switch scope {
	case ScopeConference:
		return s.tenantConference(r, p)
	case ScopeTemplate:
		return s.tenantTemplate(r, p)
	case ScopeDomain:
		if moid := r.PathValue("moid"); protocol.ValidToken(moid) && !p.owns(moid) {
			return fromStore(store.ErrDomainNotFound, moid)
		}
		return nil
	case ScopeBody, ScopeOpen:
		return nil
	}
	return errorf(ErrForbidden, "token %q acts for user domains %s only: %s %s is a platform operation; use an operator token",
		p.holder, strings.Join(p.domains, ", "), r.Method, r.URL.Path)
}

// tenantConference lets a tenant reach a conference of its domains; any
// other number answers as one that does not exist. A malformed number is
// left to the handler, which explains it.
func (s *Server) tenantConference(r *http.Request, p *principal) *apiError {
	e164 := r.PathValue("e164")
	if !protocol.ValidE164(e164) {
		return nil
	}
	c, _, err := s.conferenceAnywhere(r.Context(), e164)
	switch {
	case err != nil && !errors.Is(err, store.ErrConfNotFound):
		return fromStore(err, e164)
	case err != nil || !p.owns(c.Domain):
		return fromStore(store.ErrConfNotFound, e164)
	}
	return nil
}

// tenantTemplate is tenantConference for templates.
func (s *Server) tenantTemplate(r *http.Request, p *principal) *apiError {
	e164 := r.PathValue("e164")
	if !protocol.ValidE164(e164) {
		return nil
	}
	t, err := s.store.Template(r.Context(), e164)
	switch {
	case err != nil && !errors.Is(err, store.ErrTemplateNotFound):
		return fromStore(err, e164)
	case err != nil || !p.owns(t.Domain):
		return fromStore(store.ErrTemplateNotFound, e164)
	}
	return nil
}

// ownDomain is the check of a ScopeBody route, once its handler has read
// the user domain the body names: another tenant's domain answers as one
// that does not exist.
func ownDomain(r *http.Request, moid string) *apiError {
	if !principalOf(r).owns(moid) {
		return fromStore(store.ErrDomainNotFound, moid)
	}
	return nil
}
