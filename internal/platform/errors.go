package platform

import (
	"errors"
	"fmt"
)

var (
	// ErrBadOptions means Options cannot make a working PMS.
	ErrBadOptions = errors.New("platform: bad options")
	// ErrUnknownRoom means a room moid is not one of the platform's rooms.
	ErrUnknownRoom = errors.New("platform: unknown server room")
	// ErrBadRoomState means a room state is neither normal nor abnormal.
	ErrBadRoomState = errors.New("platform: room state must be normal or abnormal")
	// ErrBadReason means a failure's reason is too long.
	ErrBadReason = errors.New("platform: bad reason")
	// ErrManualFailure means an automatic recovery was asked of a room an
	// operator failed: only an operator recovers it.
	ErrManualFailure = errors.New("platform: room was failed by an operator")
	// ErrStarted means Start was called twice.
	ErrStarted = errors.New("platform: already started")
	// ErrBadState means a saved state cannot be read.
	ErrBadState = errors.New("platform: bad saved state")
)

// reasonError is an error whose sentence goes to the party that caused it
// (in a NACK); it matches its kind with errors.Is.
type reasonError struct {
	kind error
	msg  string
}

func (e *reasonError) Error() string { return e.msg }

func (e *reasonError) Unwrap() error { return e.kind }

func reasonf(kind error, format string, args ...any) error {
	return &reasonError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
