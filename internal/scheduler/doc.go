// Package scheduler is CSS, the conference scheduler of one platform (the
// seeds call it MAU): it books conferences onto media nodes under their
// tenant's licence (create, end, delay, rename, password, monitoring, end
// times, public templates), keeps the platform store true to what runs, and
// reports running conferences to the registry.
//
// It talks to CMs, media nodes, RMS and the registry only over the bus, and
// keeps all state in the store. It imports internal/bus, internal/store,
// internal/protocol, internal/license and internal/config; never the API,
// RMS, registry or media-node packages.
package scheduler
