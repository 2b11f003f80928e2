package resources

import "errors"

var (
	// ErrBadOptions means Options cannot make a working RMS.
	ErrBadOptions = errors.New("resources: bad options")
	// ErrUnknownRoom means a room moid is not one of the platform's rooms.
	ErrUnknownRoom = errors.New("resources: unknown server room")
	// ErrBadRoomState means a room state is neither normal nor abnormal.
	ErrBadRoomState = errors.New("resources: room state must be normal or abnormal")
	// ErrBadNode means a registration or heartbeat cannot be accepted.
	ErrBadNode = errors.New("resources: bad node registration")
	// ErrNoResources means no live media node may take a conference.
	ErrNoResources = errors.New("resources: no resources")
	// ErrStarted means Start was called twice.
	ErrStarted = errors.New("resources: already started")
)

// reasonError is an error whose sentence goes to the party that caused it
// (in a NACK); it matches its kind with errors.Is.
type reasonError struct {
	kind error
	msg  string
}

func (e *reasonError) Error() string { return e.msg }

func (e *reasonError) Unwrap() error { return e.kind }
