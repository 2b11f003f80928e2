package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// Codes the API adds to those of internal/protocol, for the parties other
// than the scheduler that it calls over the bus.
const (
	ErrRMSUnavailable      = "RMS_UNAVAILABLE"
	ErrRegistryUnavailable = "REGISTRY_UNAVAILABLE"
	ErrRegistryTimeout     = "REGISTRY_TIMEOUT"
	ErrPMSUnavailable      = "PMS_UNAVAILABLE"
	ErrPMSTimeout          = "PMS_TIMEOUT"
	ErrMethodNotAllowed    = "METHOD_NOT_ALLOWED"
)

// statusOf maps every stable error code to its HTTP status.
var statusOf = map[string]int{
	protocol.ErrBadRequest:        http.StatusBadRequest,
	protocol.ErrUnauthorized:      http.StatusUnauthorized,
	protocol.ErrDomainDisabled:    http.StatusForbidden,
	protocol.ErrNotFound:          http.StatusNotFound,
	protocol.ErrConfNotFound:      http.StatusNotFound,
	protocol.ErrDomainNotFound:    http.StatusNotFound,
	protocol.ErrMonitorNotFound:   http.StatusNotFound,
	protocol.ErrTemplateNotFound:  http.StatusNotFound,
	protocol.ErrUnknownRoom:       http.StatusNotFound,
	ErrMethodNotAllowed:           http.StatusMethodNotAllowed,
	protocol.ErrLicenseExhausted:  http.StatusConflict,
	protocol.ErrE164InUse:         http.StatusConflict,
	protocol.ErrE164Exhausted:     http.StatusConflict,
	protocol.ErrE164OutOfSegment:  http.StatusBadRequest,
	protocol.ErrDurationLimit:     http.StatusConflict,
	protocol.ErrConfNotRunning:    http.StatusConflict,
	protocol.ErrRenameRejected:    http.StatusConflict,
	protocol.ErrNodeRejected:      http.StatusBadGateway,
	protocol.ErrRMSError:          http.StatusBadGateway,
	protocol.ErrNoResources:       http.StatusServiceUnavailable,
	protocol.ErrPlatformNotServed: http.StatusServiceUnavailable,
	protocol.ErrSchedulerDown:     http.StatusServiceUnavailable,
	ErrRMSUnavailable:             http.StatusServiceUnavailable,
	ErrRegistryUnavailable:        http.StatusServiceUnavailable,
	ErrPMSUnavailable:             http.StatusServiceUnavailable,
	protocol.ErrNodeTimeout:       http.StatusGatewayTimeout,
	protocol.ErrRMSTimeout:        http.StatusGatewayTimeout,
	protocol.ErrSchedulerTimeout:  http.StatusGatewayTimeout,
	ErrRegistryTimeout:            http.StatusGatewayTimeout,
	ErrPMSTimeout:                 http.StatusGatewayTimeout,
	protocol.ErrStoreError:        http.StatusInternalServerError,
	protocol.ErrInternal:          http.StatusInternalServerError,
}

// Status is the HTTP status of an error code; codes it does not know are
// internal errors.
func Status(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// apiError is an error on its way to the client.
type apiError struct {
	code string
	msg  string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func errorf(code, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errorf(protocol.ErrBadRequest, format, args...)
}

// party is a service the API calls over the bus, with the codes that say it
// is not there or did not answer.
type party struct {
	name        string
	unavailable string
	timeout     string
	remedy      string
}

var (
	scheduler = party{"scheduler", protocol.ErrSchedulerDown, protocol.ErrSchedulerTimeout,
		"start the platform's scheduler (`convene serve` runs one); if one runs, it may be standing by while another holds the lease: retry"}
	rms = party{"resource manager (RMS)", ErrRMSUnavailable, protocol.ErrRMSTimeout,
		"start `convene rms` (or `convene serve`) for the platform"}
	registry = party{"registry", ErrRegistryUnavailable, ErrRegistryTimeout,
		"start the registry (`convene serve` runs one)"}
)

// fromBus turns the error of a bus call to p on subject into an API error.
// A NACK keeps the responder's code and sentence.
func fromBus(err error, p party, subject string) *apiError {
	var nack *bus.NackError
	switch {
	case errors.As(err, &nack):
		code := nack.Code
		if code == "" {
			code = protocol.ErrInternal
		}
		msg := nack.Message
		if msg == "" {
			msg = fmt.Sprintf("the %s refused the request (%s)", p.name, nack.Type)
		}
		return &apiError{code: code, msg: msg}
	case errors.Is(err, bus.ErrNoResponders):
		return errorf(p.unavailable, "no %s answers on %s: %s", p.name, subject, p.remedy)
	case errors.Is(err, bus.ErrTimeout):
		return errorf(p.timeout, "the %s did not answer on %s in time; retry, and check its logs if it keeps happening", p.name, subject)
	case errors.Is(err, context.Canceled):
		return errorf(protocol.ErrInternal, "the request was cancelled before the %s answered", p.name)
	}
	return errorf(protocol.ErrInternal, "asking the %s on %s failed: %s", p.name, subject, err.Error())
}

// fromStore turns a store error about key (a number or a moid) into an API
// error.
func fromStore(err error, key string) *apiError {
	switch {
	case errors.Is(err, store.ErrConfNotFound):
		return errorf(protocol.ErrConfNotFound, "conference %s does not exist; it may have ended", key)
	case errors.Is(err, store.ErrDomainNotFound):
		return errorf(protocol.ErrDomainNotFound, "domain %q is not known to this platform; check the moid", key)
	case errors.Is(err, store.ErrTemplateNotFound):
		return errorf(protocol.ErrTemplateNotFound, "template %s does not exist", key)
	case errors.Is(err, store.ErrMonitorNotFound):
		return errorf(protocol.ErrMonitorNotFound, "monitoring session %s does not exist; it may have expired", key)
	}
	return errorf(protocol.ErrStoreError, "the state store failed: %s; check that it is running", err.Error())
}
