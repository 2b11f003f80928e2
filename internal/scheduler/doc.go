// Package scheduler is CSS, the conference scheduler of one platform (the
// seeds call it MAU): it books conferences onto media nodes under their
// tenant's licence (create, end, delay, rename, password, monitoring, end
// times, public templates), keeps the platform store true to what runs, and
// reports running conferences to the registry.
//
// It talks to CMs, media nodes, RMS and the registry only over the bus, and
// keeps all state in the store, but public templates and bookings, which
// live in the records database when it has one (templates.go,
// bookings.go). It imports internal/bus, internal/store, internal/records,
// internal/protocol, internal/license and internal/config; never the API,
// RMS, registry or media-node packages.
//
// The Scheduler coordinates three parts of its own, each with its own state
// and lock, each reaching what it depends on through a small interface it
// declares: the election of the active instance (election.go: the lease in
// the store, the lease clock, activation), the disaster-recovery peers
// (peers.go: the masters' buses and stores, the service list) and the CM
// control of running conferences (controlset.go: a wildcard subscription
// per bus, the set of conferences controlled, who answers a request).
//
// # Locks
//
// Taken in this order, never the other way round:
//
//  1. Scheduler.termMu (activate, deactivate);
//  2. peers.applying (a platform state notice, with the failovers and
//     failbacks it sets off);
//  3. a node's lock in Scheduler.nodeMu (that node's conference list);
//  4. restorer.mu, then loads.mu (restore placement);
//  5. leaves, under which no other lock is taken: Scheduler.mu, election.mu,
//     peers.mu, controls.mu, underWay.mu, loads.mu, letGoes.mu,
//     offerFlights.mu, singles.mu.
//
// Scheduler.mu and restorer.mu are never held together. A part calls out
// (the election its candidate, the controls their finder and handler) with
// no lock of its own held; the peers call their events with only applying
// held.
package scheduler
