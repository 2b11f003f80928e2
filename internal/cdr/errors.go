package cdr

import (
	"errors"
	"fmt"

	"github.com/convene/convene/internal/protocol"
)

var (
	// ErrNotFound: no call record (or live call) with that id.
	ErrNotFound = errors.New("NOT_FOUND: no call with that id: list call records with GET /v1/cdrs")
	// ErrClosed: the service was shut down.
	ErrClosed = errors.New("cdr: the call records service is shut down")
	// ErrInvalidEvent: a call event the recorder cannot take (no Call-ID,
	// an unknown type, ...); nothing was written.
	ErrInvalidEvent = errors.New("cdr: invalid call event")
	// ErrTimeZone: the time zone is unknown, or differs from the one the
	// records database keeps its roll-ups in.
	ErrTimeZone = errors.New("cdr: time zone")
	// ErrSlowSubscriber: a subscriber to the change feed fell so far
	// behind that its channel was closed; read the live calls again and
	// subscribe again.
	ErrSlowSubscriber = errors.New("cdr: the change feed's subscriber fell behind: read the live calls again and subscribe again")
)

// ParamError is a query parameter refused: it names the parameter and
// says what to send instead. Its code is BAD_REQUEST (HTTP 400).
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string { return fmt.Sprintf("parameter %q: %s", e.Param, e.Reason) }

// Code is the error code of the API's error envelope.
func (e *ParamError) Code() string { return protocol.ErrBadRequest }

func paramErr(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Reason: fmt.Sprintf(format, args...)}
}
