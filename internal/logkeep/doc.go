// Package logkeep keeps the log lines of a call or a conference: a
// slog.Handler that passes every record on to the handler it wraps and
// tees those carrying a call id or a conference number (the attributes
// named "call_id" and "e164") to a Keeper, which writes them in batches
// to a Sink (the records database: records.DB.KeepLines) without ever
// making a caller wait: when its queue is full a line is dropped and
// counted.
//
// The host wraps its logger with one Keeper and attaches the first
// infrastructure resource that is a Sink; a host without one keeps
// nothing. The retention of kept lines is the call records service's
// (internal/cdr).
//
// logkeep imports only the standard library: the host (tier 2) imports
// it, and the records database implements its Sink.
package logkeep
