// Package bus is Convene's message bus: a connection to NATS (an external
// cluster, or a server embedded in this process), JSON messages whose "type"
// names the message, publish, request/reply with deadlines, and handlers
// dispatched by type like net/http's mux.
//
// Every connection authenticates with the credential of a role (roles.go:
// the permission table, Permissions), from a set of nkeys (creds.go) or a
// credential file; the embedded server refuses anyone else and holds each
// role to its subjects (auth.go). TLS to an external server is an option.
//
// It imports only internal/protocol of Convene's packages.
package bus
