package breakout

import (
	"errors"
	"fmt"

	"github.com/convene/convene/internal/codes"
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

// Stable codes of ticket refusals (the codebook's); any other invalid
// ticket is codes.Unauthorized.
const (
	CodeTicketExpired = codes.TicketExpired
	CodeTicketUsed    = codes.TicketUsed
	CodeTicketStale   = codes.TicketStale
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
	return codes.Unauthorized
}

// statusCodes are the stable codes of the statusCode values of the BMS
// protocol; their HTTP statuses, for the REST mirror, are the codebook's.
var statusCodes = map[uint32]string{
	protocol.BreakoutNotHost:        codes.BreakoutNotHost,
	protocol.BreakoutNotActive:      codes.BreakoutNotActive,
	protocol.BreakoutAlreadyActive:  codes.BreakoutAlreadyActive,
	protocol.BreakoutCountdown:      codes.BreakoutCountdown,
	protocol.BreakoutUnknownRoom:    codes.UnknownRoom,
	protocol.BreakoutUnknownUser:    codes.UnknownUser,
	protocol.BreakoutConfNotRunning: codes.ConfNotRunning,
	protocol.BreakoutBadRequest:     codes.BadRequest,
	protocol.BreakoutPhoneMainOnly:  codes.PhoneMainRoomOnly,
	protocol.BreakoutSpeakerLimit:   codes.SpeakerLimit,
	protocol.BreakoutNotAllowed:     codes.BreakoutNotAllowed,
	protocol.BreakoutNotInConf:      codes.UserNotInConference,
	protocol.BreakoutConfEnded:      codes.ConfNotFound,
	protocol.BreakoutBusy:           codes.BreakoutBusy,
	protocol.BreakoutInternal:       codes.Internal,
}

// StatusName is the stable code of a statusCode ("OK" for 0).
func StatusName(status uint32) string {
	if status == protocol.BreakoutOK {
		return "OK"
	}
	if c, ok := statusCodes[status]; ok {
		return c
	}
	return codes.Internal
}
