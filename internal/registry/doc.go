// Package registry is UPU, the directory of callable numbers: for each
// running conference, scheduled conference, template and virtual room, the
// platform, room and node where it lives now (000 §7). Schedulers report to
// it over the bus; SIP routing and disaster recovery read it.
//
// A number may have an entry of each kind at once: a scheduled
// conference's number keeps its booking while the conference runs, and a
// lookup answers the running conference first, else the booking, whose
// real platform is where a call to it goes. A backup's registry holds a
// failed master's bookings, reported by the backup's scheduler with the
// master as source platform, until the master recovers
// (UPU_CLEAR_BOOKINGS_NTF).
//
// It keeps its directory in memory and asks the schedulers to report
// everything again when it starts. It imports internal/bus and
// internal/protocol only.
package registry
