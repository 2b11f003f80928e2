package sip

import "errors"

var (
	// ErrBadOptions: New was given options or dependencies it cannot run
	// with; the error says which and what to set.
	ErrBadOptions = errors.New("sip: bad options")
	// ErrStarted: Start was called twice.
	ErrStarted = errors.New("sip: node already started")
	// ErrBadPassword: a subscriber password that cannot be used.
	ErrBadPassword = errors.New("sip: bad password")
)
