package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
)

// Every error the API answers carries a code of the codebook
// (internal/codes), whose HTTP status it answers with. Store errors become
// codes in one place, store.Refusal; bus errors here.

// party is a service the API calls over the bus, with the codes that say it
// is not there or did not answer.
type party struct {
	name        string
	unavailable string
	timeout     string
	remedy      string
}

var (
	scheduler = party{"scheduler", codes.SchedulerUnavailable, codes.SchedulerTimeout,
		"start the platform's scheduler (`convene serve` runs one); if one runs, it may be standing by while another holds the lease: retry"}
	rms = party{"resource manager (RMS)", codes.RMSUnavailable, codes.RMSTimeout,
		"start `convene rms` (or `convene serve`) for the platform"}
	registry = party{"registry", codes.RegistryUnavailable, codes.RegistryTimeout,
		"start the registry (`convene serve` runs one)"}
	pms = party{"platform monitor (PMS)", codes.PMSUnavailable, codes.PMSTimeout,
		"start the platform monitor for the platform (`convene serve` runs one)"}
)

// fromBus turns the error of a bus call to p on subject into an API error.
// A NACK keeps the responder's code and sentence.
func fromBus(err error, p party, subject string) *codes.Error {
	var nack *bus.NackError
	switch {
	case errors.As(err, &nack):
		code := nack.Code
		if code == "" {
			code = codes.Internal
		}
		msg := nack.Message
		if msg == "" {
			msg = fmt.Sprintf("the %s refused the request (%s)", p.name, nack.Type)
		}
		return &codes.Error{Code: code, Message: msg, Err: err}
	case errors.Is(err, bus.ErrNoResponders):
		return codes.Errorf(p.unavailable, "no %s answers on %s: %s", p.name, subject, p.remedy)
	case errors.Is(err, bus.ErrTimeout):
		return codes.Errorf(p.timeout, "the %s did not answer on %s in time; retry, and check its logs if it keeps happening", p.name, subject)
	case errors.Is(err, context.Canceled):
		return codes.Errorf(codes.Internal, "the request was cancelled before the %s answered", p.name)
	}
	return codes.Errorf(codes.Internal, "asking the %s on %s failed: %s", p.name, subject, err.Error())
}
