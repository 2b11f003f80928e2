// Package alarms is the alarm service (process monitoring, seed 003): it
// watches every host and plugin, media node, server room and platform,
// the licence classes of the platform's domains, conferences whose
// restore keeps failing, the store and its own bus connection; raises an
// alarm when one stops answering or fails, and clears it when the cause
// goes. One alarm is active per cause (kind and subject), across restarts:
// alarms are kept in the records database, written again until written
// while it cannot be reached. It serves GET /v1/alarms and
// POST /v1/alarms/{id}/ack on the API, a Prometheus gauge per active
// alarm, a webhook for new alarms, and announces each change on
// alarm.ntf.<platform>.
//
// It imports the host framework, the bus, the store, records, httpkit
// and the vocabulary (protocol, codes, license, apiclient), never another
// service: it asks RMS and PMS over the bus as any client does.
package alarms
