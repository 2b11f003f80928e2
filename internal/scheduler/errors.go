package scheduler

import (
	"errors"
	"fmt"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// Error is a refusal with a stable code of the codebook (internal/codes)
// and a sentence for the user.
type Error = codes.Error

func fail(code string, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// Code is the error code of err: its *Error's code, or INTERNAL.
func Code(err error) string { return codes.Of(err) }

// storeError is the refusal of a store error about conference or template
// e164: the store's one mapping (store.Refusal).
func storeError(e164 string, err error) *Error { return store.Refusal(err, e164, "") }

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
	return fail(protocol.ErrNodeTimeout, err, "media node %s unreachable: %s", node, err.Error())
}
