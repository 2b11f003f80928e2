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
