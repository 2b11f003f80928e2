package store

import (
	"errors"
	"fmt"
)

var (
	ErrDomainNotFound   = errors.New("store: domain not found")
	ErrDomainDisabled   = errors.New("store: domain disabled")
	ErrLicenseExhausted = errors.New("store: licence exhausted")
	ErrE164InUse        = errors.New("store: e164 in use")
	ErrE164Exhausted    = errors.New("store: no free e164 in the number segment")
	ErrConfNotFound     = errors.New("store: conference not found")
	ErrStateConflict    = errors.New("store: conference is not in the expected state")
	ErrNodeMismatch     = errors.New("store: conference is attributed to another node")
	ErrTemplateNotFound = errors.New("store: template not found")
	ErrMonitorNotFound  = errors.New("store: monitoring session not found")
	ErrClosed           = errors.New("store: closed")
	ErrLegacy           = errors.New("store: a legacy node's conference is never moved")
	ErrLeaseHeld        = errors.New("store: the lease is held by another")
)

// LicenseError details ErrLicenseExhausted.
type LicenseError struct {
	Domain string
	Class  string
	InUse  int
	Limit  int
}

func (e *LicenseError) Error() string {
	return fmt.Sprintf("domain %q has %d of %d conferences of class %s running", e.Domain, e.InUse, e.Limit, e.Class)
}

func (e *LicenseError) Unwrap() error { return ErrLicenseExhausted }

// StateError details ErrStateConflict.
type StateError struct {
	E164  string
	State string
	Want  string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("conference %s is %s, not %s", e.E164, e.State, e.Want)
}

func (e *StateError) Unwrap() error { return ErrStateConflict }
