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
	// ErrNoSuchDialog refuses to end a SIP call for a request whose tags
	// name none of its dialogs.
	ErrNoSuchDialog = errors.New("store: the request's tags name no dialog of this call")
	// ErrE164OutOfSegment refuses a number that is not of the platform's
	// number segment (details in a *SegmentError).
	ErrE164OutOfSegment = errors.New("store: e164 outside the platform's number segment")
	// ErrDurationLimit refuses a delay that would make a conference longer
	// than it may be booked for (details in a *DurationError).
	ErrDurationLimit = errors.New("store: the conference would be longer than allowed")
)

// SegmentError details ErrE164OutOfSegment.
type SegmentError struct {
	E164    string
	Segment string
	Digits  int
}

func (e *SegmentError) Error() string {
	return fmt.Sprintf("number %s is not of the segment %s followed by %d digits", e.E164, e.Segment, e.Digits)
}

func (e *SegmentError) Unwrap() error { return ErrE164OutOfSegment }

// DurationError details ErrDurationLimit.
type DurationError struct {
	E164   string
	Booked int // minutes booked so far
	Limit  int // the longest a conference may be booked for, in minutes
}

// Remaining is how many minutes may still be added.
func (e *DurationError) Remaining() int { return max(e.Limit-e.Booked, 0) }

func (e *DurationError) Error() string {
	return fmt.Sprintf("conference %s is booked for %d minutes of at most %d; %d more can be added", e.E164, e.Booked, e.Limit, e.Remaining())
}

func (e *DurationError) Unwrap() error { return ErrDurationLimit }

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
