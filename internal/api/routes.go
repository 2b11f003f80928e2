package api

import (
	"fmt"
	"net/http"
	"strings"
)

// Route is a handler another package mounts on the API (Deps.Routes), so
// that the API serves it with its own conventions — bearer auth, request
// metrics, JSON 405 with Allow, the error envelope — without importing
// that package.
type Route struct {
	// Pattern is a net/http pattern with its method:
	// "GET /v1/conferences/{e164}/breakout".
	Pattern string
	Handler http.Handler
	// Open skips the bearer check and the role checks: the handler
	// authenticates the request itself (a WebSocket that carries a signed
	// ticket). Holder still reports a valid bearer token when the request
	// has one.
	Open bool
	// Scope says what the route acts on, which decides which tokens may
	// use it (ScopePlatform, ScopeConference, ScopeDomain or
	// ScopeTemplate). The zero value, ScopePlatform, closes the route to
	// tenant tokens. Readonly tokens may use GET routes only.
	Scope Scope
}

// HTTPError is an error a mounted route answers with: the HTTP status, a
// stable code and a sentence that says what to do.
type HTTPError struct {
	Status  int
	Code    string
	Message string
}

func (e *HTTPError) Error() string { return e.Code + ": " + e.Message }

// WriteError sends e in the API's error envelope
// {"error":{"code","message"}}.
func WriteError(w http.ResponseWriter, e *HTTPError) {
	writeJSON(w, e.Status, ErrorBody{Error: ErrorDetail{Code: e.Code, Message: e.Message}})
}

// WriteJSON sends v as the JSON body of a response with status.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// Decode reads a request body strictly into v, as the API's own routes
// do: one JSON object, no unknown fields, at most 1 MiB. Its error is a
// 400 BAD_REQUEST naming the field at fault.
func Decode(r *http.Request, v any) *HTTPError {
	if err := decode(r, v); err != nil {
		return &HTTPError{Status: Status(err.code), Code: err.code, Message: err.msg}
	}
	return nil
}

// Holder says who holds the bearer token of a request served through a
// Route (false when it carries none, or none valid, on an Open route).
func Holder(r *http.Request) (string, bool) {
	p, ok := r.Context().Value(principalKey{}).(*principal)
	if !ok {
		return "", false
	}
	return p.holder, true
}

// mount wraps a mounted route's handler with the bearer and role checks
// (unless Open) and records the token's holder in the request's context.
func (s *Server) mount(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.authenticate(r)
		switch {
		case rt.Open:
		case !ok:
			unauthorized(w)
			return
		default:
			if err := s.authorize(r, p, rt.Scope); err != nil {
				writeError(w, err)
				return
			}
		}
		if ok {
			r = withPrincipal(r, p)
		}
		rt.Handler.ServeHTTP(w, r)
	})
}

// mountedRoutes builds the mux with the mounted routes, turning a route
// net/http refuses (a malformed pattern, one that clashes with another)
// into an error.
func (s *Server) mountedRoutes() (h http.Handler, err error) {
	for _, rt := range s.mounted {
		if rt.Handler == nil || !strings.Contains(rt.Pattern, " /") {
			return nil, fmt.Errorf("api: route %q: give a method, a path and a handler", rt.Pattern)
		}
		if err := checkScope(rt); err != nil {
			return nil, err
		}
	}
	defer func() {
		if r := recover(); r != nil {
			h, err = nil, fmt.Errorf("api: mounted routes: %s", fmt.Sprint(r))
		}
	}()
	return s.routes(), nil
}

// checkScope refuses a mounted route whose scope cannot be checked: the
// path must hold what the scope names.
func checkScope(rt Route) error {
	_, path, _ := strings.Cut(rt.Pattern, " ")
	switch rt.Scope {
	case ScopePlatform:
		return nil
	case ScopeConference, ScopeTemplate:
		if strings.Contains(path, "{e164}") {
			return nil
		}
		return fmt.Errorf("api: route %q: scope %s needs {e164} in the path", rt.Pattern, rt.Scope)
	case ScopeDomain:
		if strings.Contains(path, "{moid}") {
			return nil
		}
		return fmt.Errorf("api: route %q: scope %s needs {moid} in the path", rt.Pattern, rt.Scope)
	}
	return fmt.Errorf("api: route %q: scope %s is not for mounted routes: use platform, conference, domain or template (and Open for a route that authenticates itself)", rt.Pattern, rt.Scope)
}
