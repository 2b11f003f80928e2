// Package codes is Convene's codebook: every stable error code a user can
// meet (in an HTTP error envelope, a bus NACK, a WebSocket refusal or a
// start-up error), the HTTP status it answers with, and a line saying what
// it means. Clients switch on these strings: a code, once given, never
// changes, and each is written here once.
//
// It also holds the shapes a coded error takes: Error (a code, a sentence
// that says what to do, and the cause) and Envelope, the JSON body of every
// HTTP error, {"error":{"code","message"}}.
//
// Tier 1 (vocabulary): it imports nothing of Convene's. internal/protocol
// re-exports the codes of the bus protocol under their historical names
// (protocol.ErrBadRequest is codes.BadRequest).
package codes
