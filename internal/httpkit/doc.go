// Package httpkit is what every Convene service that answers HTTP mounts
// on: the route type with its scope, bearer-token auth with token roles
// (operator, tenant of some user domains, readonly) decided per route
// before the handler runs, the JSON error envelope with the codebook's
// statuses (internal/codes), strict JSON decoding with bounded messages,
// path and query helpers, and the handler that serves a set of routes with
// a JSON 405 (and Allow) for a method a path does not serve, a JSON 404
// for a path no route has, and a hook for request metrics.
//
// The REST API (internal/api) serves its own routes and those other
// services mount on it (the breakout service's, and the wings to come)
// through one Handler, so that every route has the same auth, roles,
// envelope and errors.
//
// Tier 2 (infrastructure): it imports internal/codes, internal/protocol
// and internal/config of Convene's packages, and never a service. What it
// needs to know of a service's objects (whose conference a number is) it
// asks through Tenancy, an interface the service implements.
package httpkit
