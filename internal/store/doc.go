// Package store is a platform's state store: a Redis client (redis-server in
// production, an in-process Redis-protocol server by default), the key layout
// of seeds 001 and 000 (see keys.go), and the Lua scripts that make every
// multi-key change atomic (lua/*.lua).
//
// Writes on the create path go through a group-commit batcher: concurrent
// callers' items are handed to one script run, each item still checked and
// applied on its own. At low load a batch holds one item and adds no delay.
//
// Every write is safe to repeat (ops.go): each script run carries an
// operation id, records its reply under it, and answers a repeat of the
// same operation with that reply instead of applying it again. The client
// sends an operation again, under its id, only when the connection failed;
// it never lets go-redis resend a script blindly.
//
// It imports internal/protocol and internal/license only.
package store
