// Package bus is Convene's message bus: a connection to NATS (an external
// cluster, or a server embedded in this process), JSON messages whose "type"
// names the message, publish, request/reply with deadlines, and handlers
// dispatched by type like net/http's mux.
//
// It imports only internal/protocol of Convene's packages.
package bus
