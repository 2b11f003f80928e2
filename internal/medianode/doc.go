// Package medianode is the node side of Convene's media-node protocol: a
// media node (MCU) that registers with RMS, beats, reports what it hosts, and
// answers the scheduler's requests to host, restore, release, rename and
// monitor conferences. Media itself is out of scope, so conferences are held
// in memory; that makes the package Convene's media-node simulator
// (`convene mcu-sim`, `convene serve --sim-nodes N`) and the stand-in node
// of every test, drill and benchmark.
//
// It owns a node's conference table, its registration and liveness loops,
// the faults a test or drill injects into it (Fault), and the log of what
// the scheduler sent it (Received).
//
// It imports only internal/bus and internal/protocol of Convene's packages;
// it must never import the scheduler, RMS, the store or anything above them,
// since it plays the external process those talk to.
package medianode
