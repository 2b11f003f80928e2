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
	// ErrUnknownPlatform means a platform moid is neither this platform
	// nor one of its masters or backups.
	ErrUnknownPlatform = errors.New("platform: unknown platform")
	// ErrNotMaster means a DR mode was set for a platform that is not a
	// master of this one.
	ErrNotMaster = errors.New("platform: not a master platform")
	// ErrBadPlatformState means an own state is neither normal nor
	// abnormal.
	ErrBadPlatformState = errors.New("platform: platform state must be normal or abnormal")
	// ErrBadDRMode means a DR mode is not one of automatic, manual-on,
	// manual-off, closed.
	ErrBadDRMode = errors.New("platform: bad disaster-recovery mode")
)

// Codes and message types PMS uses that internal/protocol does not define
// (yet).
const (
	// CodeUnknownPlatform NACKs a request naming a platform this PMS does
	// not know (ErrUnknownPlatform).
	CodeUnknownPlatform = "UNKNOWN_PLATFORM"
	// PlatformConfigNack answers a PLATFORM_CONFIG_REQ PMS cannot answer.
	PlatformConfigNack = "PLATFORM_CONFIG_NACK"
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
