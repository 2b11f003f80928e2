package store

import (
	"errors"

	"github.com/convene/convene/internal/codes"
)

// Refusal turns an error of this package into the stable code (the
// codebook's) and the sentence a user gets, keeping err as its cause. It
// is the one place store errors become codes: the scheduler, the API and
// the breakout service all answer with it. e164 is the conference or
// template number and moid the user domain the operation was about;
// either may be empty when not known.
func Refusal(err error, e164, moid string) *codes.Error {
	var (
		le *LicenseError
		se *SegmentError
		de *DurationError
	)
	refuse := func(code, format string, args ...any) *codes.Error {
		e := codes.Errorf(code, format, args...)
		e.Err = err
		return e
	}
	switch {
	case errors.As(err, &le):
		return refuse(codes.LicenseExhausted, "domain %q has %d of %d conferences of class %s running; end one or raise the licence", le.Domain, le.InUse, le.Limit, le.Class)
	case errors.Is(err, ErrLicenseExhausted):
		return refuse(codes.LicenseExhausted, "the domain's licence allows no more conferences of this class; end one or raise the licence")
	case errors.As(err, &se):
		return refuse(codes.E164OutOfSegment, "number %s is outside the platform's number segment: use %s followed by %d digits, or leave e164 out", se.E164, se.Segment, se.Digits)
	case errors.Is(err, ErrE164OutOfSegment):
		return refuse(codes.E164OutOfSegment, "number %s is outside the platform's number segment: choose another, or leave e164 out", e164)
	case errors.As(err, &de) && de.Remaining() == 0:
		return refuse(codes.DurationLimit, "conference %s is booked for %d minutes, the most a conference may last; it cannot be made longer", de.E164, de.Booked)
	case errors.As(err, &de):
		return refuse(codes.DurationLimit, "conference %s is booked for %d minutes and may last at most %d; delay it by %d minutes or less", de.E164, de.Booked, de.Limit, de.Remaining())
	case errors.Is(err, ErrDurationLimit):
		return refuse(codes.DurationLimit, "conference %s would last longer than a conference may; delay it by less", e164)
	case errors.Is(err, ErrDomainNotFound) && moid != "":
		return refuse(codes.DomainNotFound, "domain %q is not known to this platform; check the moid", moid)
	case errors.Is(err, ErrDomainNotFound):
		return refuse(codes.DomainNotFound, "the user domain is not known to this platform; check the moid")
	case errors.Is(err, ErrDomainDisabled) && moid != "":
		return refuse(codes.DomainDisabled, "domain %q is disabled; enable it before booking", moid)
	case errors.Is(err, ErrDomainDisabled):
		return refuse(codes.DomainDisabled, "the user domain is disabled; enable it before booking")
	case errors.Is(err, ErrE164InUse):
		return refuse(codes.E164InUse, "number %s belongs to a conference or a template already; choose another or leave e164 out", e164)
	case errors.Is(err, ErrE164Exhausted):
		return refuse(codes.E164Exhausted, "every number of the platform's segment is taken; end conferences or widen e164_digits")
	case errors.Is(err, ErrConfNotFound):
		return refuse(codes.ConfNotFound, "conference %s does not exist; it may have ended", e164)
	case errors.Is(err, ErrStateConflict):
		return refuse(codes.ConfNotRunning, "conference %s is not running: %s", e164, err.Error())
	case errors.Is(err, ErrConfNotRunning):
		return refuse(codes.ConfNotRunning, "conference %s is not running; retry once it runs", e164)
	case errors.Is(err, ErrTemplateNotFound):
		return refuse(codes.TemplateNotFound, "template %s does not exist", e164)
	case errors.Is(err, ErrMonitorNotFound):
		return refuse(codes.MonitorNotFound, "conference %s has no such monitoring session; it may have expired", e164)
	}
	return refuse(codes.StoreError, "the state store failed: %s; check that it is running", err.Error())
}
