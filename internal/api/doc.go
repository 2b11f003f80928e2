// Package api is Convene's REST API: the conference manager (CM) of the
// seeds, played over HTTP. It owns the /v1 routes, bearer-token auth with
// token roles (operator, tenant of some user domains, readonly: access.go,
// where each route's scope decides who may use it), the JSON error envelope and its stable codes, strict request decoding, the
// request metrics, the CM agent that records scheduler notifications and
// approves media-node renames (cm.go), and the Go client of the API
// (client.go) that the CLI, the benchmark and integration tests use.
//
// Writes go to the platform's scheduler, RMS and registry as bus requests;
// reads come from the platform store. The package keeps no state of its own
// beyond the ring of recent notifications.
//
// It imports internal/bus, internal/store, internal/protocol,
// internal/license and internal/config of Convene's packages; it must never
// import the scheduler, resources, registry or medianode packages: it
// speaks to them only over the bus.
package api
