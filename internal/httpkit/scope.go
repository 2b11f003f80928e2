package httpkit

import (
	"fmt"
	"net/http"
	"strings"
)

// Scope says what a route acts on, which decides who may use it:
//
//   - operator tokens may use every route;
//   - readonly tokens may use GET (and HEAD) of every route, and are
//     refused any other method with 403 FORBIDDEN;
//   - tenant tokens may use routes about their own user domains:
//     another domain's conference, template or domain answers 404 exactly
//     as one that does not exist; platform-wide routes answer 403
//     FORBIDDEN.
type Scope int

const (
	// ScopePlatform is the platform as a whole (nodes, rooms, platforms,
	// the registry, events, licence limits): closed to tenant tokens. It
	// is the zero value: a route that says nothing is closed to tenants.
	ScopePlatform Scope = iota
	// ScopeConference is the conference numbered {e164} in the path. A
	// tenant token may use it for a conference of its domains.
	ScopeConference
	// ScopeDomain is the user domain {moid} of the path.
	ScopeDomain
	// ScopeTemplate is the template numbered {e164} in the path.
	ScopeTemplate
	// ScopeBody is the user domain the request body names: the handler
	// checks it with OwnDomain once the body is read.
	ScopeBody
	// ScopeOpen asks for no token: the handler answers anyone (health) or
	// authenticates the request itself (a WebSocket with a ticket). A
	// valid bearer token, when the request has one, is still recorded
	// (PrincipalOf, Holder).
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

// param is the path parameter that names a scope's object.
func (s Scope) param() string {
	switch s {
	case ScopeConference, ScopeTemplate:
		return "e164"
	case ScopeDomain:
		return "moid"
	}
	return ""
}

// Route is one route: a net/http pattern with its method, what it acts on,
// and its handler (often a HandlerFunc).
type Route struct {
	// Pattern is a net/http pattern with its method:
	// "GET /v1/conferences/{e164}/breakout".
	Pattern string
	// Scope says what the route acts on, which decides which tokens may
	// use it.
	Scope   Scope
	Handler http.Handler
}

// check refuses a route that cannot be served as it says: no method, no
// handler, or a scope whose object the path does not name.
func (rt Route) check() error {
	method, path, ok := strings.Cut(rt.Pattern, " ")
	if !ok || method == "" || !strings.HasPrefix(path, "/") || rt.Handler == nil {
		return fmt.Errorf("httpkit: route %q: give a method, a path and a handler", rt.Pattern)
	}
	if _, ok := scopeNames[rt.Scope]; !ok {
		return fmt.Errorf("httpkit: route %q: %s is not a scope: use platform, conference, domain, template, body or open", rt.Pattern, rt.Scope)
	}
	if p := rt.Scope.param(); p != "" && !strings.Contains(path, "{"+p+"}") {
		return fmt.Errorf("httpkit: route %q: scope %s needs {%s} in the path", rt.Pattern, rt.Scope, p)
	}
	return nil
}
