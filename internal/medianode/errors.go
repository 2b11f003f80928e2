package medianode

import "errors"

var (
	// ErrBadOptions means New was given options it cannot run with.
	ErrBadOptions = errors.New("medianode: bad options")
	// ErrNotRunning means the node is not started (or was shut down or
	// killed).
	ErrNotRunning = errors.New("medianode: node not running")
	// ErrRunning means Start was called on a running node.
	ErrRunning = errors.New("medianode: node already running")
	// ErrNotHosted means the node does not host that conference.
	ErrNotHosted = errors.New("medianode: conference not hosted")
)

// CodeNodeFull is the errcode of a create or restore NACK from a node that
// hosts as many conferences as its capacity.
const CodeNodeFull = "NODE_FULL"
