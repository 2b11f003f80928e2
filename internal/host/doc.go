// Package host is Convene's framework (seed 004, 核心开发框架模型): a host
// is one process that reads one YAML file and runs the servers it names;
// each server is built from a plugin and receives the components its
// configuration lists; servers talk through message channels that are local
// (an in-process bounded queue) or distributed (a bus subject with a queue
// group), chosen by deployment.type.
//
// It owns:
//   - the repository of plugins (plugin.go): each registers itself at init
//     with a dotted ID and provides at most one server and any number of
//     components, each with a configuration struct holding its defaults;
//   - the host file (file.go, strict.go, refs.go): decoded strictly, every
//     mistake reported with the file, the key path, the line and what to do;
//   - the lifecycle (lifecycle.go, host.go, repository.go): New, Provision,
//     Validate, Start, Stop, Cleanup, as Caddy's modules; stopping and
//     starting a plugin while the host runs, with its HTTP routes gated to
//     503 PLUGIN_STOPPED meanwhile (routes.go), and the bus subscriptions
//     it handed over (Context.Track) ended by the host before its Stop;
//   - what an instance gets from the host (context.go): resources of the
//     infrastructure entries, channel endpoints, a logger, a metrics
//     registerer whose registrations end with the instance, the topology;
//   - message channels (channel.go, distributed.go) and the small bus
//     interface they need (Transport, with an adapter for internal/bus);
//   - the management model (status.go, management.go): what runs where, its
//     state and health, and the bus messages and client that ask any host
//     for it or tell it to stop or start a plugin;
//   - what the program running a host may reach (instances.go): the
//     instance a server runs now, a plugin's defaults for display.
//   - keeping logs (logs.go): the host's logger tees the lines about a
//     call or a conference (attributes call_id, e164) to a logkeep.Keeper
//     writing to the first infrastructure resource that is a logkeep.Sink
//     (the records database); a host without one keeps nothing.
//
// It imports internal/bus (same tier) only for the Transport adapter (the
// rest depends on the Transport interface), and internal/logkeep (same
// tier, standard library only) for keeping logs. It never imports a service:
// services import host and register themselves.
package host
