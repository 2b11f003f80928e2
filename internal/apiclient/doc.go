// Package apiclient is the Go client of Convene's REST API, and the
// request and response bodies the API and its clients share (bodies.go).
// The CLI, the benchmarks, the drills and the end-to-end tests call the API
// through it.
//
// An error answer is an *Error with the HTTP status and the stable code of
// the codebook (internal/codes). The client keeps connections alive and is
// safe for concurrent use: make one and reuse it.
//
// Tier 1 (vocabulary): it imports internal/codes and internal/license of
// Convene's packages and nothing of the server's, so that any program can
// call the API without linking the services.
package apiclient
