// Package api is Convene's REST API: the conference manager (CM) of the
// seeds, played over HTTP. It owns the /v1 routes and their handlers, the
// request metrics, and the CM agent that records scheduler notifications
// and approves media-node renames (cm.go).
//
// Its routes, and those other services mount on it (Deps.Routes: the
// breakout service's, and the wings to come), are served through
// internal/httpkit, which owns bearer-token auth with token roles
// (operator, tenant of some user domains, readonly), the scope of each
// route (access.go lists the API's), the error envelope and strict
// decoding. Every error carries a code of the codebook (internal/codes),
// which gives its HTTP status; store errors become codes in
// store.Refusal. The request and response bodies, and the Go client the
// CLI, the benchmarks and the tests use, are internal/apiclient.
//
// Writes go to the platform's scheduler, RMS and registry as bus requests;
// reads come from the platform store. The package keeps no state of its own
// beyond the ring of recent notifications.
//
// It imports internal/httpkit, internal/codes, internal/apiclient,
// internal/bus, internal/store, internal/protocol, internal/license and
// internal/config of Convene's packages; it must never import another
// service (scheduler, resources, registry, platform, medianode, breakout):
// it speaks to them only over the bus, and mounts what they serve over
// HTTP as httpkit routes.
package api
