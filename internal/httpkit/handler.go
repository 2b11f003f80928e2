package httpkit

import (
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/convene/convene/internal/codes"
)

// HandlerFunc is a route's handler: it writes a success itself, or returns
// the error to answer.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) *codes.Error

// ServeHTTP runs f and sends its error.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		WriteError(w, err)
	}
}

// Options configure a Handler.
type Options struct {
	// Tokens are the bearer tokens accepted; required.
	Tokens *Tokens
	// Tenancy says whose a conference or template is; required when a
	// route's scope is conference, template, domain or body.
	Tenancy Tenancy
	// Instrument, when set, wraps each route's handler (request metrics),
	// labelled with the route's pattern; a path's 405 answers with the
	// path, a request no route matches with "unmatched".
	Instrument func(route string, h http.Handler) http.Handler
	// Log records the failures of HandlerFunc routes that answer 5xx.
	Log *slog.Logger
	// NotFoundHint ends the sentence of a request no route matches
	// ("the API lives under /v1").
	NotFoundHint string
}

// NewHandler serves routes: each behind the bearer check and the role
// checks of its scope, then the handler; a path that routes serve with
// other methods answers 405 METHOD_NOT_ALLOWED with Allow; any other
// request 404 NOT_FOUND. A route that cannot be served (no method or
// handler, a scope its path cannot be checked by, a pattern net/http
// refuses or that clashes with another) is an error.
func NewHandler(opts Options, routes []Route) (h http.Handler, err error) {
	if opts.Tokens == nil {
		return nil, fmt.Errorf("httpkit: no tokens")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Instrument == nil {
		opts.Instrument = func(_ string, h http.Handler) http.Handler { return h }
	}
	for _, rt := range routes {
		if err := rt.check(); err != nil {
			return nil, err
		}
		if opts.Tenancy == nil && rt.Scope != ScopePlatform && rt.Scope != ScopeOpen {
			return nil, fmt.Errorf("httpkit: route %q: scope %s needs Options.Tenancy", rt.Pattern, rt.Scope)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			h, err = nil, fmt.Errorf("httpkit: routes: %s", fmt.Sprint(r))
		}
	}()
	return opts.mux(routes), nil
}

// notServed are the methods a path's catch-all answers 405 for, each its
// own pattern: a pattern without a method would clash with a route of a
// wider path ("GET /v1/cdrs/{id}" beside "GET /v1/cdrs/stats").
var notServed = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions}

// mux builds the routes' mux. Each path also gets a catch-all for the
// methods it does not serve, so that those get a JSON 405 with Allow.
func (o *Options) mux(routes []Route) *http.ServeMux {
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		allowed[path] = append(allowed[path], method)
		mux.Handle(rt.Pattern, o.Instrument(rt.Pattern, o.guard(rt)))
	}
	for path, methods := range allowed {
		sort.Strings(methods)
		allow := strings.Join(methods, ", ")
		if strings.Contains(allow, http.MethodGet) {
			allow += ", " + http.MethodHead
		}
		h := o.Instrument(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			WriteError(w, codes.Errorf(codes.MethodNotAllowed, "%s is not served on %s; use %s", r.Method, r.URL.Path, allow))
		}))
		for _, m := range notServed {
			if !strings.Contains(", "+allow+", ", ", "+m+", ") {
				mux.Handle(m+" "+path, h)
			}
		}
	}
	hint := ""
	if o.NotFoundHint != "" {
		hint = "; " + o.NotFoundHint
	}
	mux.Handle("/", o.Instrument("unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, codes.Errorf(codes.NotFound, "no route %s %s%s", r.Method, r.URL.Path, hint))
	})))
	return mux
}

// guard checks the bearer token and its role against the route's scope,
// records who holds it, then runs the route's handler.
func (o *Options) guard(rt Route) http.Handler {
	fn, isFunc := rt.Handler.(HandlerFunc)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := o.Tokens.Authenticate(r)
		switch {
		case rt.Scope == ScopeOpen:
		case !ok:
			writeUnauthorized(w)
			return
		default:
			if err := authorize(r, p, rt.Scope, o.Tenancy); err != nil {
				o.send(w, r, err)
				return
			}
		}
		if ok {
			r = withAccess(r, &access{p: p, tenancy: o.Tenancy})
		}
		if !isFunc {
			rt.Handler.ServeHTTP(w, r)
			return
		}
		if err := fn(w, r); err != nil {
			o.send(w, r, err)
		}
	})
}

// send answers err, and logs it when it is the server's failure.
func (o *Options) send(w http.ResponseWriter, r *http.Request, err *codes.Error) {
	if err.Status() >= 500 {
		o.Log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "code", err.Code, "err", err.Message)
	}
	WriteError(w, err)
}
