package host

import "context"

// The lifecycle of every server and component, in order (as Caddy's
// modules): New (Plugin.Server, ComponentInfo.New), Provision, Validate,
// Start, Stop, Cleanup. Only a server must implement Start and Stop; the
// other steps are optional interfaces. Cleanup runs once for every
// instance New made, whatever happened after: a failed Provision or Start
// included.

// Server is a long-running unit with one job. Start must not block: it
// starts the work and returns; its ctx bounds the start only (the work
// runs until Stop; Provision's Context ends just before Stop). Stop ends
// the work, within ctx.
type Server interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Component is a piece of behaviour a server is assembled from. It may
// implement any of Provisioner, Validator, Runner and CleanerUpper; the
// server it is loaded into decides what else it must be.
type Component any

// Provisioner sets an instance up: cfg is the pointer its plugin's Config
// returned, with the host file's section decoded into it; ctx hands it
// what the host owns (resources, channels, routes, logger, metrics).
// Provision reads and prepares; it does not start work.
type Provisioner interface {
	Provision(ctx Context, cfg any) error
}

// Validator checks a provisioned instance before anything starts.
type Validator interface {
	Validate() error
}

// Runner is a component that runs: started before it is loaded into its
// server, stopped after it is unloaded.
type Runner interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// CleanerUpper releases what Provision took.
type CleanerUpper interface {
	Cleanup() error
}

// ComponentLoader is a server that takes components. The host loads each
// component the host file lists for the server before it starts the
// server, and loads and unloads them while it runs, as their plugins are
// started and stopped; a loader must accept both concurrently with its
// work. name is the component's name (as its plugin registers it).
type ComponentLoader interface {
	Load(name string, c Component) error
	Unload(name string)
}

// Provider is an infrastructure server: it provides a resource (a bus
// connector, a store, records) that other servers get by name through
// Context.Resource. A resource that carries distributed channels is a
// Transport or a TransportProvider.
type Provider interface {
	Resource() any
}

// HealthChecker reports an instance's health for Status: nil is healthy.
type HealthChecker interface {
	Health(ctx context.Context) error
}

// State is where an instance is in its lifecycle.
type State string

// The states of an instance.
const (
	// StateProvisioned: made, provisioned and validated, not started.
	StateProvisioned State = "provisioned"
	// StateRunning: started; it serves.
	StateRunning State = "running"
	// StateStopping: being stopped.
	StateStopping State = "stopping"
	// StateStopped: stopped and cleaned up (or never started because its
	// plugin is stopped).
	StateStopped State = "stopped"
	// StateFailed: a lifecycle step failed; the error is kept.
	StateFailed State = "failed"
)
