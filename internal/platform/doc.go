// Package platform is PMS, the platform monitor of one platform (seed 000
// §1.2 and §2).
//
// For now it owns the state of the platform's server rooms (机房): normal
// or abnormal, with why and since when. A room fails automatically when
// every media node it had is down and recovers automatically when one comes
// back (自动); an operator fails and recovers rooms by hand (手动开启,
// 手动关闭) with SERVER_ROOM_SET_REQ, and a room failed by hand stays failed
// until it is recovered by hand. Every change is broadcast as
// SERVER_ROOM_STATE_NOTIFY on monitor.notify.server_room, and the full state
// again every few seconds so that a service that missed a change converges.
// RMS stops offering the nodes of an abnormal room; the scheduler restores
// that room's conferences elsewhere. Requests arrive on
// monitor.req.<platform>: SERVER_ROOM_STATE_REQ and SERVER_ROOM_SET_REQ.
//
// PMS learns node liveness from RMS only: its node list (RMS_NODELIST_REQ)
// at start and periodically, and its notices (RMS_NODE_STATE_NTF) in
// between. It tells nobody what to do except through its broadcasts.
//
// A later round adds the platform's own state, its master and backup
// platforms and their configuration (PLATFORM_STATE_REQ,
// PLATFORM_CONFIG_REQ, monitor.notify.platform): they belong beside rooms.go
// in their own files, on the same request mux and StateStore.
//
// Of Convene's packages it imports internal/bus and internal/protocol only;
// it must never import resources, scheduler, store, config, api or cli.
package platform
