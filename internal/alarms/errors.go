package alarms

import "errors"

var (
	// ErrNotFound: no alarm has that id.
	ErrNotFound = errors.New("alarms: no such alarm")
	// ErrOptions: an option is out of range.
	ErrOptions = errors.New("alarms: bad option")
)
