// Package resources is RMS, the resource manager of one platform (seed 000
// §1): it owns the table of media nodes (MCU, VRS, MPS) that registered on
// the platform's bus, their liveness from heartbeats, the state of the
// platform's server rooms, and the answer to GET_RES_REQ — which live nodes
// in which healthy rooms may take a conference, the preferred room first.
//
// It announces every node coming up or going down (RMS_NODE_STATE_NTF)
// exactly once and in order; the scheduler restores conferences from those
// notices. A node is down when it missed its heartbeats or, when RMS hears
// the bus's connection events, soon after its bus connection ended and did
// not come back. RMS's own lost connection, or a pause of its process,
// takes nobody down: every node gets a fresh heartbeat window. Its overload
// guard does the same while the process is starved of CPU, and holds a
// take-down while node messages already received wait to be handled; for
// a bounded time (Options.OverloadHold), so that a frozen node is found
// however loaded the machine.
//
// A failed room does not take its nodes down: RMS only stops offering them
// until the platform monitor reports the room normal again.
//
// RMS keeps no durable state. After a restart it relearns every node from
// its next heartbeat, which repeats the registration.
//
// Of Convene's packages it imports internal/bus and internal/protocol only;
// it must never import the scheduler, the store, config or the CLI.
package resources
