// Package sip is the SIP edge of seed 003: a registrar and a stateful
// proxy over UDP and TCP (on github.com/emiago/sipgo) whose nodes run
// active-active in two datacenters.
//
// Everything a node must share with the other lives in the platform
// store: registrations (address of record → contacts), the nonce counts
// of digest authentication (nonces are signed with a key in the store, so
// a challenge one node issued is answered through the other), and the
// calls in progress (so whichever node sees a call end, a BYE through the
// other datacenter included, ends it once, and a call nobody ends is
// closed by its session timer on any node). A node holds in memory only
// the transactions in flight and, for Options.SubscriberCacheTTL, the
// subscribers' credentials it read: killing one loses no registration and
// no call record.
//
// A node authenticates subscribers (internal/records) with digest (401
// for REGISTER, 407 for INVITE and other requests outside a dialog),
// forks an INVITE to a registered user to all its contacts, and routes an
// INVITE to a conference number through the registry (UPU) to the media
// node running the conference now, whose SIP contact RMS's node list
// carries; each node record-routes with its own identity, pops the
// record-routes of any node of the platform, and so routes in-dialog
// requests that reach it through either datacenter. Calls are reported
// to a CallRecorder (calls.go) the node is given; it writes no records
// itself, and drops an ended call from the store only once the recorder
// says its record is written.
//
// Subpackages: digest (server-side digest authentication), account
// (seed 003's account API), sipplugin (the host's plugins
// convene.sip.proxy, convene.sip.account and convene.sip.records, which
// wire a node to the call records of internal/cdr) and sipp (sipp
// scenarios and runner: the edge's load generator and process-level
// test driver).
//
// It imports internal/store, internal/records, internal/protocol and
// internal/bus's types; it must never import another service, the API or
// the host: the host wraps a Node as its plugins.
package sip
