// Package registry is UPU, the directory of callable numbers: for each
// running conference, scheduled conference, template and virtual room, the
// platform, room and node where it lives now (000 §7). Schedulers report to
// it over the bus; SIP routing and disaster recovery read it.
//
// It keeps its directory in memory and asks the schedulers to report
// everything again when it starts. It imports internal/bus and
// internal/protocol only.
package registry
