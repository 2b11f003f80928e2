package breakout

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/convene/convene/internal/protocol"
)

var (
	// ErrBadOptions means New was given options or dependencies it cannot
	// run with.
	ErrBadOptions = errors.New("breakout: bad options")
	// ErrStarted means Start was called twice.
	ErrStarted = errors.New("breakout: already started")
	// ErrBusy means a change kept meeting changes of other instances.
	ErrBusy = errors.New("breakout: the state kept changing under the change")
	// ErrTicket means a WebSocket ticket is malformed, forged, expired,
	// used, or for another conference; the errors below are kinds of it.
	ErrTicket = errors.New("breakout: invalid ticket")
	// ErrTicketExpired means a ticket's lifetime is over.
	ErrTicketExpired = fmt.Errorf("%w: it expired", ErrTicket)
	// ErrTicketUsed means another connection used the ticket already.
	ErrTicketUsed = fmt.Errorf("%w: it was used already, and a ticket is good for one connection", ErrTicket)
	// ErrTicketStale means the ticket is for a conference that ended,
	// whose number a new conference has taken.
	ErrTicketStale = fmt.Errorf("%w: it is for an earlier conference with this number, which has ended", ErrTicket)
)

// Stable codes of ticket refusals; any other invalid ticket is
// protocol.ErrUnauthorized.
const (
	CodeTicketExpired = "TICKET_EXPIRED"
	CodeTicketUsed    = "TICKET_USED"
	CodeTicketStale   = "TICKET_STALE"
)

// ticketCode is the stable code of a ticket refusal.
func ticketCode(err error) string {
	switch {
	case errors.Is(err, ErrTicketExpired):
		return CodeTicketExpired
	case errors.Is(err, ErrTicketUsed):
		return CodeTicketUsed
	case errors.Is(err, ErrTicketStale):
		return CodeTicketStale
	}
	return protocol.ErrUnauthorized
}

// codes are the REST mirror's error codes and HTTP statuses of the
// statusCode values of the BMS protocol.
var codes = map[uint32]struct {
	code   string
	status int
}{
	protocol.BreakoutNotHost:        {"BREAKOUT_NOT_HOST", http.StatusForbidden},
	protocol.BreakoutNotActive:      {"BREAKOUT_NOT_ACTIVE", http.StatusConflict},
	protocol.BreakoutAlreadyActive:  {"BREAKOUT_ALREADY_ACTIVE", http.StatusConflict},
	protocol.BreakoutCountdown:      {"BREAKOUT_COUNTDOWN", http.StatusConflict},
	protocol.BreakoutUnknownRoom:    {protocol.ErrUnknownRoom, http.StatusNotFound},
	protocol.BreakoutUnknownUser:    {"UNKNOWN_USER", http.StatusNotFound},
	protocol.BreakoutConfNotRunning: {protocol.ErrConfNotRunning, http.StatusConflict},
	protocol.BreakoutBadRequest:     {protocol.ErrBadRequest, http.StatusBadRequest},
	protocol.BreakoutPhoneMainOnly:  {"PHONE_MAIN_ROOM_ONLY", http.StatusConflict},
	protocol.BreakoutSpeakerLimit:   {"SPEAKER_LIMIT", http.StatusConflict},
	protocol.BreakoutNotAllowed:     {"BREAKOUT_NOT_ALLOWED", http.StatusForbidden},
	protocol.BreakoutNotInConf:      {"USER_NOT_IN_CONFERENCE", http.StatusConflict},
	protocol.BreakoutConfEnded:      {protocol.ErrConfNotFound, http.StatusNotFound},
	protocol.BreakoutBusy:           {"BREAKOUT_BUSY", http.StatusServiceUnavailable},
	protocol.BreakoutInternal:       {protocol.ErrInternal, http.StatusInternalServerError},
}

// StatusName is the stable code of a statusCode ("OK" for 0).
func StatusName(status uint32) string {
	if status == protocol.BreakoutOK {
		return "OK"
	}
	if c, ok := codes[status]; ok {
		return c.code
	}
	return protocol.ErrInternal
}
