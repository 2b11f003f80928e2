// Package sipplugin registers the SIP edge with the host framework
// (internal/host): three plugins, each a server a host file names.
//
//   - convene.sip.proxy: one SIP node, registrar and stateful proxy on
//     UDP and TCP (internal/sip), reporting its calls to the call records
//     (internal/cdr) it writes into the records database. Resources: the
//     bus (a connection with the SIP role, to reach the registry and
//     RMS), the platform store, the records database.
//   - convene.sip.account: seed 003's account API on a listener of its
//     own, and POST /AgoraAccount mounted on the host's API.
//   - convene.sip.records: the REST routes of subscribers and call
//     records: POST, GET /v1/sip/subscribers, DELETE
//     /v1/sip/subscribers/{user}, GET /v1/cdrs, /v1/cdrs/{id},
//     /v1/cdrs/{id}/log.
//
// Each plugin's configuration struct holds its defaults; the domain and
// the appid default to the topology's sip: section. Sections builds the
// servers of one SIP node for a host file (convene serve, convene sip).
//
// It imports the SIP edge's own packages (sip, sip/account, cdr), the
// infrastructure (bus, store, records, config, httpkit, codes) and the
// host; never another service.
package sipplugin
