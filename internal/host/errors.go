package host

import (
	"errors"

	"github.com/convene/convene/internal/codes"
)

// Stable error codes the host gives users (HTTP envelopes, control
// replies): the codebook's (internal/codes), which also holds their HTTP
// statuses.
const (
	// CodePluginStopped: what a stopped plugin served is not available
	// until it is started again (HTTP 503).
	CodePluginStopped = codes.PluginStopped
	// CodeRouteGone: the route's plugin runs but its fresh instance no
	// longer serves the route (HTTP 404).
	CodeRouteGone = codes.NotFound
	// CodeUnknownPlugin: the plugin ID is not used on the host asked.
	CodeUnknownPlugin = codes.UnknownPlugin
	// CodeBadRequest: a control request that cannot be read or acted on.
	CodeBadRequest = codes.BadRequest
	// CodePluginFailed: a plugin could not be started.
	CodePluginFailed = codes.PluginFailed
	// CodeHostNotRunning: the host asked is starting or stopping.
	CodeHostNotRunning = codes.HostNotRunning
	// CodeHostConfig: the host file is refused.
	CodeHostConfig = codes.HostConfig
)

var (
	// ErrConfig wraps every refusal of a host file (ConfigErrors).
	ErrConfig = errors.New(CodeHostConfig + ": the host file is refused")
	// ErrUnknownPlugin means a plugin ID is not used on this host.
	ErrUnknownPlugin = errors.New(CodeUnknownPlugin + ": no such plugin on this host")
	// ErrInfrastructure means an infrastructure plugin was asked to stop or
	// start while the host runs: everything else depends on it.
	ErrInfrastructure = errors.New(CodeBadRequest + ": infrastructure stops and starts only with the host")
	// ErrPluginStopped means what was asked for belongs to a stopped plugin.
	ErrPluginStopped = errors.New(CodePluginStopped + ": the plugin is stopped")
	// ErrPluginFailed means a plugin's fresh instances failed to start.
	ErrPluginFailed = errors.New(CodePluginFailed + ": the plugin failed to start")
	// ErrNotRunning means the host is not running (not started, or
	// stopped).
	ErrNotRunning = errors.New(CodeHostNotRunning + ": the host is not running")
	// ErrClosed means a channel endpoint was closed: its instance stopped.
	ErrClosed = errors.New("host: channel endpoint closed")
	// ErrBusy means every receiver of a distributed channel refused a
	// message because its queue is full (back-pressure), or none listens.
	ErrBusy = errors.New("host: no receiver took the message")
	// ErrNoResponders is what a Transport returns from Request when
	// nobody listens on the subject.
	ErrNoResponders = errors.New("host: nobody listens on the subject")
	// ErrRouteClash means two instances mount the same route pattern, or
	// a route new since the host started.
	ErrRouteClash = errors.New("host: route already mounted")
)
