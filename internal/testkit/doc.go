// Package testkit is the one harness Convene's tests share: Eventually
// (poll a condition with a deadline, never sleep a guess), an embedded bus
// and its connections, a store (the in-process one or a real
// redis-server), each ended when the test ends. A whole platform in one
// process is started by internal/testkit/stackkit, which imports the
// services; testkit itself imports only the bus and the store, so that a
// service's own tests may use it.
//
// Test support: only tests import it.
package testkit
