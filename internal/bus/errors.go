package bus

import (
	"errors"
	"fmt"
)

var (
	// ErrTimeout means a request got no reply before its deadline.
	ErrTimeout = errors.New("bus: request timed out")
	// ErrNoResponders means nobody listens on the subject.
	ErrNoResponders = errors.New("bus: no responders")
	// ErrClosed means the connection is closed.
	ErrClosed = errors.New("bus: connection closed")

	// ErrUnauthorized means the server refused the connection's
	// credentials (or its lack of them).
	ErrUnauthorized = errors.New("BUS_UNAUTHORIZED: the bus refused this connection's credentials")
	// ErrDenied means the server refused a publish or a subscription the
	// connection's role is not allowed (see Permissions).
	ErrDenied = errors.New("BUS_DENIED: the bus refused a subject this role may not use")
	// ErrNoCredential means no credential is at hand for a role.
	ErrNoCredential = errors.New("BUS_NO_CREDENTIAL: no bus credential")
	// ErrBadCredential means a credential file cannot be read as one.
	ErrBadCredential = errors.New("BUS_BAD_CREDENTIAL: not a bus credential")
	// ErrUnknownRole means a role name is not one of Roles.
	ErrUnknownRole = errors.New("bus: unknown role")
)

// NackError is a negative reply (a *_NACK or ERROR message) turned into an
// error. Code is the stable error code the responder chose.
type NackError struct {
	Type    string
	Code    string
	Message string
}

func (e *NackError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s: %s", e.Type, e.Code)
	}
	return fmt.Sprintf("%s: %s: %s", e.Type, e.Code, e.Message)
}
