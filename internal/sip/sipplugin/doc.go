// Package sipplugin registers the SIP edge with the host framework
// (internal/host): four plugins, each a server a host file names.
//
//   - convene.sip.proxy: one SIP node, registrar and stateful proxy on
//     UDP and TCP (internal/sip), reporting its calls to the call records
//     (internal/cdr) it writes into the records database, and announcing
//     each change of a live call on the platform's call notification
//     subject (never waiting for the bus: a change it cannot send is
//     dropped and counted). Resources: the bus (a connection with the SIP
//     role, to reach the registry and RMS), the platform store, the
//     records database.
//   - convene.sip.account: seed 003's account API on a listener of its
//     own, and POST /AgoraAccount mounted on the host's API.
//   - convene.sip.records: the REST routes of subscribers and call
//     records: POST, GET /v1/sip/subscribers, DELETE
//     /v1/sip/subscribers/{user}, GET /v1/cdrs, /v1/cdrs/stats,
//     /v1/cdrs/export (CSV), /v1/cdrs/{id}, /v1/cdrs/{id}/log,
//     /v1/calls/live, and POST /v1/cdrs/generate (realistic calls
//     through the same call records, for demos and benchmarks).
//   - convene.cdr.thirdparty: seed 003's call records interface for the
//     bank's own systems: GET /cdrs, read-only, on a listener of its own
//     (port 8068) behind a bearer token of its own.
//
// Each plugin's configuration struct holds its defaults; the domain and
// the appid default to the topology's sip: section. Sections builds the
// servers of one SIP node for a host file (convene serve, convene sip).
//
// It imports the SIP edge's own packages (sip, sip/account, cdr), the
// infrastructure (bus, store, records, config, httpkit, codes) and the
// host; never another service.
package sipplugin
