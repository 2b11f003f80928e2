package api

import (
	"context"
	"errors"
	"net/http"
	"sort"

	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
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
// Each route says what it acts on (its httpkit.Scope); the kit decides
// from the token's role and the scope before the handler runs, asking the
// server (tenancy, below) whose a conference or template is.

// RouteInfo is a route the server serves and what it acts on.
type RouteInfo struct {
	Pattern string
	Scope   httpkit.Scope
	// Open: no bearer token is asked for (httpkit.ScopeOpen).
	Open bool
}

// RouteTable lists every route the server serves, its own and those
// mounted (Deps.Routes), sorted by pattern.
func (s *Server) RouteTable() []RouteInfo {
	var out []RouteInfo
	for _, rt := range s.routes {
		out = append(out, RouteInfo{Pattern: rt.Pattern, Scope: rt.Scope, Open: rt.Scope == httpkit.ScopeOpen})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pattern < out[j].Pattern })
	return out
}

// tenancy answers the kit's questions about whose an object is from the
// stores this API reads.
type tenancy struct{ s *Server }

// Owner is the user domain of a conference (wherever its data lives) or a
// template.
func (t tenancy) Owner(ctx context.Context, scope httpkit.Scope, e164 string) (string, *codes.Error) {
	var (
		domain  string
		err     error
		missing error
	)
	if scope == httpkit.ScopeTemplate {
		tp, terr := t.s.store.Template(ctx, e164)
		domain, err, missing = tp.Domain, terr, store.ErrTemplateNotFound
	} else {
		c, _, cerr := t.s.conferenceAnywhere(ctx, e164)
		domain, err, missing = c.Domain, cerr, store.ErrConfNotFound
	}
	switch {
	case errors.Is(err, missing):
		return "", t.Hidden(scope, e164)
	case err != nil:
		return "", store.Refusal(err, e164, "")
	}
	return domain, nil
}

// Hidden is the answer to an object that does not exist.
func (tenancy) Hidden(scope httpkit.Scope, key string) *codes.Error {
	switch scope {
	case httpkit.ScopeConference:
		return store.Refusal(store.ErrConfNotFound, key, "")
	case httpkit.ScopeTemplate:
		return store.Refusal(store.ErrTemplateNotFound, key, "")
	}
	return store.Refusal(store.ErrDomainNotFound, "", key)
}

// ownDomain is the check of a ScopeBody route once its handler has read
// the user domain the body names (httpkit.OwnDomain).
func ownDomain(r *http.Request, moid string) *codes.Error { return httpkit.OwnDomain(r, moid) }
