package scheduler

import (
	"errors"
	"fmt"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// Error is a refusal with a stable code (protocol/errors.go) and a sentence
// for the user.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func (e *Error) Unwrap() error { return e.Err }

func fail(code string, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// Code is the error code of err: its *Error's code, or INTERNAL.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return protocol.ErrInternal
}

// storeError maps the store's errors to refusals.
func storeError(e164 string, err error) *Error {
	var (
		le *store.LicenseError
		se *store.SegmentError
		de *store.DurationError
	)
	switch {
	case errors.As(err, &le):
		return fail(protocol.ErrLicenseExhausted, err, "domain %q has %d of %d conferences of class %s running; end one or raise the licence", le.Domain, le.InUse, le.Limit, le.Class)
	case errors.As(err, &se):
		return fail(protocol.ErrE164OutOfSegment, err, "number %s is outside the platform's number segment: use %s followed by %d digits, or leave e164 out", se.E164, se.Segment, se.Digits)
	case errors.As(err, &de) && de.Remaining() == 0:
		return fail(protocol.ErrDurationLimit, err, "conference %s is booked for %d minutes, the most a conference may last; it cannot be made longer", de.E164, de.Booked)
	case errors.As(err, &de):
		return fail(protocol.ErrDurationLimit, err, "conference %s is booked for %d minutes and may last at most %d; delay it by %d minutes or less", de.E164, de.Booked, de.Limit, de.Remaining())
	case errors.Is(err, store.ErrDomainNotFound):
		return fail(protocol.ErrDomainNotFound, err, "no user domain with that moid is known to the store")
	case errors.Is(err, store.ErrDomainDisabled):
		return fail(protocol.ErrDomainDisabled, err, "the user domain is disabled; enable it before booking")
	case errors.Is(err, store.ErrE164InUse):
		return fail(protocol.ErrE164InUse, err, "number %s belongs to a conference or a template already; choose another or leave e164 out", e164)
	case errors.Is(err, store.ErrE164Exhausted):
		return fail(protocol.ErrE164Exhausted, err, "every number of the platform's segment is taken; end conferences or widen e164_digits")
	case errors.Is(err, store.ErrConfNotFound):
		return fail(protocol.ErrConfNotFound, err, "no conference %s", e164)
	case errors.Is(err, store.ErrStateConflict):
		return fail(protocol.ErrConfNotRunning, err, "conference %s is not running: %v", e164, err)
	case errors.Is(err, store.ErrTemplateNotFound):
		return fail(protocol.ErrTemplateNotFound, err, "no template %s", e164)
	case errors.Is(err, store.ErrMonitorNotFound):
		return fail(protocol.ErrMonitorNotFound, err, "no such monitoring session of conference %s", e164)
	}
	return fail(protocol.ErrStoreError, err, "the platform store failed: %v", err)
}

// nodeError maps a failed request to a media node.
func nodeError(node string, err error) *Error {
	var ne *bus.NackError
	switch {
	case errors.As(err, &ne):
		return fail(protocol.ErrNodeRejected, err, "media node %s refused: %s %s", node, ne.Code, ne.Message)
	case errors.Is(err, bus.ErrTimeout):
		return fail(protocol.ErrNodeTimeout, err, "media node %s did not answer in time", node)
	case errors.Is(err, bus.ErrNoResponders):
		return fail(protocol.ErrNodeTimeout, err, "media node %s is not listening", node)
	}
	return fail(protocol.ErrNodeTimeout, err, "media node %s unreachable: %v", node, err)
}
