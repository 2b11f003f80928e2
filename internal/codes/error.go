package codes

import (
	"errors"
	"fmt"
)

// Error is a refusal on its way to a user: a stable code of the book and a
// sentence that says what to do. Err, when set, is its cause, reachable
// with errors.Is and errors.As; it never reaches the user.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Err     error  `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status of the error's code.
func (e *Error) Status() int { return Status(e.Code) }

// Errorf is an error with code and a sentence made as fmt.Sprintf makes
// it.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Of is the code of err: the code of the first *Error in its chain, or
// Internal.
func Of(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Envelope is the JSON body of every HTTP error answer:
// {"error":{"code":"...","message":"..."}}.
type Envelope struct {
	Error Error `json:"error"`
}
