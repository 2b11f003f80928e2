// Package platform is PMS, the platform monitor of one platform (seed 000
// §1.2 and §2).
//
// It owns the state of the platform's server rooms (机房): normal
// or abnormal, with why and since when. A room fails automatically when
// every media node it had is down and recovers automatically when one comes
// back (自动); an operator fails and recovers rooms by hand (手动开启,
// 手动关闭) with SERVER_ROOM_SET_REQ, and a room failed by hand stays failed
// until it is recovered by hand. Every change is broadcast as
// SERVER_ROOM_STATE_NOTIFY on monitor.notify.server_room, and the full state
// again every few seconds so that a service that missed a change converges.
// RMS stops offering the nodes of an abnormal room; the scheduler restores
// that room's conferences elsewhere. Requests arrive on
// monitor.req.<platform>: SERVER_ROOM_STATE_REQ and SERVER_ROOM_SET_REQ
// for rooms, the PLATFORM_* requests for platforms.
//
// PMS learns node liveness from RMS only: its node list (RMS_NODELIST_REQ)
// at start and periodically, and its notices (RMS_NODE_STATE_NTF) in
// between. It tells nobody what to do except through its broadcasts.
//
// It also owns the state of the platform itself and what it sees of its
// master platforms (主平台: it takes their conferences when they fail) and
// backup platforms (备平台: they take its conferences) (000 §2). The
// platform is normal unless an operator switches it over
// (PLATFORM_SET_REQ abnormal: its backups take over, its scheduler stands
// down) and back. PMS polls every master's and backup's PMS over that
// platform's own bus (PLATFORM_STATE_REQ); one that does not answer a few
// polls in a row is unreachable. Each master has a DR mode (自动, 手动开启,
// 手动关闭, 关闭: automatic, manual-on, manual-off, closed,
// PLATFORM_DR_SET_REQ) that turns what is observed into the effective
// state the scheduler acts on; closed means the scheduler is never told of
// the master's failures. Every change of the own state, of a master's
// effective state or DR mode is broadcast as PLATFORM_STATE_NOTIFY on
// monitor.notify.platform, and again with the room broadcast. Backups are
// shown, not acted on. PLATFORM_CONFIG_REQ tells one platform's addresses.
// The operators' decisions (switchover, DR modes) are kept in the same
// StateStore as the rooms they failed.
//
// Of Convene's packages it imports internal/bus and internal/protocol only;
// it must never import resources, scheduler, store, config, api or cli.
package platform
