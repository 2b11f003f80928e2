// Package breakout is Convene's breakout-room service, the seed's BMS
// (seed 002, SPEC §5): a host splits a running conference into rooms, moves
// people between them and brings everyone back, with a countdown; the
// service tells the media node running the conference exactly who must
// hear whom.
//
// It owns:
//   - the breakout model of a conference (model.go) and every operation on
//     it as a pure function of the state (ops_*.go), with the seed's
//     notifications;
//   - the audio routing plan derived from that state and the four AUDIO_*
//     messages to the node's mixer and forwarder (plan.go, node.go);
//   - the WebSocket client protocol (ws.go, clients.go), with the compact
//     start a client may ask for (compact.go), and the operators' REST
//     mirror (rest.go), routes of internal/httpkit that the API mounts;
//   - keeping the state in the platform store, versioned, so that any
//     instance serves any conference and finishes a running countdown
//     (service.go, persist.go, countdown.go), and following the conference
//     through its end and its restores onto other nodes (lifecycle.go).
//
// Instances share nothing but the store and the bus: notifications go out
// on bms.<e164> and every instance pushes them to its own clients.
//
// It imports internal/httpkit (routes, auth, the error envelope),
// internal/codes, internal/bus, internal/store and internal/protocol. It
// must never import another service (api, scheduler, resources, registry,
// platform, medianode): the conference's life reaches it as bus
// notifications, the node as bus messages.
package breakout
