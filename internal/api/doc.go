// Package api is Convene's REST API: the conference manager (CM) of the
// seeds, played over HTTP. It owns the /v1 routes and their handlers, the
// request metrics, and the CM agent that records scheduler notifications
// and approves media-node renames (cm.go). GET /v1/events asked with
// Accept: text/event-stream is the event stream (stream.go): conference,
// node, room, platform, licence, live-call and alarm notifications heard
// on the bus, as server-sent events. GET /v1/logs reads the log lines kept
// in the records database (logs.go; internal/logkeep keeps them).
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
// reads come from the platform store (and the logs from the records
// database, when the API's host has one). The package keeps no state of
// its own beyond the ring of recent notifications and the open streams.
//
// It imports internal/httpkit, internal/codes, internal/apiclient,
// internal/bus, internal/store, internal/records, internal/protocol,
// internal/license and internal/config of Convene's packages; it must never import another
// service (scheduler, resources, registry, platform, medianode, breakout):
// it speaks to them only over the bus, and mounts what they serve over
// HTTP as httpkit routes.
package api
