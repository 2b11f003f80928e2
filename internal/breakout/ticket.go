package breakout

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/convene/convene/internal/protocol"
)

// A ticket is how a WebSocket client proves who it is: the conference
// manager (an API token holder) asks for one on the user's behalf
// (POST /v1/conferences/{e164}/breakout/tickets), saying the user's ids,
// its role and its client type; the client connects with ?ticket=. It is
// the claims in base64url JSON, a dot, and their HMAC-SHA256 with a
// secret every instance shares.
//
// A ticket is good for one connection, to one conference, for a short
// while (Options.TicketTTL):
//   - it names the conference instance, not only its number: the time the
//     conference first ran, which a restore onto another node keeps and a
//     new conference with the same number does not share;
//   - its random id is redeemed in the store when a client connects with
//     it; a second connection with it is refused. A client that retries a
//     connection whose answer it never got sends the same nonce
//     (TicketNonceHeader) and is let in again: the redemption is its own.

// TicketNonceHeader is the request header in which a client may send a
// nonce of its own choosing (16 to 128 letters, digits, '-' or '_') with
// a ticket: connecting again with the same ticket and nonce is a retry of
// the same connection, not a second use.
const TicketNonceHeader = "Convene-Ticket-Nonce"

// maxTicket bounds what verification reads of a ticket; real ones are
// about 250 characters.
const maxTicket = 2048

// ticketKeep is how long past its expiry a ticket's redemption is kept in
// the store: a margin for the clocks of instances that disagree.
const ticketKeep = 5 * time.Minute

type claims struct {
	// ID is the ticket's random identity, redeemed on use.
	ID   string `json:"j"`
	E164 string `json:"e"`
	// Start is the conference instance: when it first ran (Unix ms).
	Start int64 `json:"s"`
	Identity
	Exp int64 `json:"x"` // Unix s
}

// b64 is strict: one ticket has one spelling.
var b64 = base64.RawURLEncoding.Strict()

// instanceOf is what identifies a conference instance among conferences
// with the same number: when it first ran. A restore keeps it; a new
// conference with the number gets its own. 0 means it has not run yet.
func instanceOf(c protocol.Conference) int64 { return c.RealStartTime }

// Ticket signs a single-use ticket for a user of a conference instance,
// valid for the service's TicketTTL; it returns the ticket and when it
// expires.
func (s *Service) Ticket(c protocol.Conference, id Identity) (string, time.Time) {
	exp := s.now().Add(s.opts.TicketTTL).Truncate(time.Second)
	body, _ := json.Marshal(claims{ID: randomHex(16), E164: c.E164, Start: instanceOf(c), Identity: id, Exp: exp.Unix()})
	payload := b64.EncodeToString(body)
	return payload + "." + b64.EncodeToString(s.sign(payload)), exp
}

func (s *Service) sign(payload string) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// parse checks a ticket's form, signature and expiry, and that it is for
// conference e164, and returns its claims. It reads nothing of the store.
func (s *Service) parse(ticket, e164 string) (claims, error) {
	if ticket == "" {
		return claims{}, fmt.Errorf("%w: none given (?ticket=)", ErrTicket)
	}
	if len(ticket) > maxTicket {
		return claims{}, fmt.Errorf("%w: longer than %d characters", ErrTicket, maxTicket)
	}
	payload, sig, ok := strings.Cut(ticket, ".")
	if !ok {
		return claims{}, fmt.Errorf("%w: not <payload>.<signature>", ErrTicket)
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.sign(payload)) {
		return claims{}, fmt.Errorf("%w: bad signature", ErrTicket)
	}
	body, err := b64.DecodeString(payload)
	if err != nil {
		return claims{}, fmt.Errorf("%w: payload is not base64url", ErrTicket)
	}
	var c claims
	if err := json.Unmarshal(body, &c); err != nil {
		return claims{}, fmt.Errorf("%w: payload: %w", ErrTicket, err)
	}
	switch {
	case c.ID == "" || c.Start == 0:
		return claims{}, fmt.Errorf("%w: it names no ticket id or conference instance", ErrTicket)
	case c.E164 != e164:
		return claims{}, fmt.Errorf("%w: it is for conference %s", ErrTicket, c.E164)
	case s.now().Unix() > c.Exp:
		return claims{}, fmt.Errorf("%w at %s", ErrTicketExpired, time.Unix(c.Exp, 0).UTC().Format(time.RFC3339))
	}
	return c, nil
}

// ofInstance checks that the ticket's claims are for the conference as it
// is now, not an earlier one with the same number.
func (c claims) ofInstance(conf protocol.Conference) error {
	if c.E164 != conf.E164 || c.Start != instanceOf(conf) {
		return ErrTicketStale
	}
	return nil
}

// redeem uses the ticket for one connection: session, or the client's
// nonce when it sent one. A second use by anyone else is ErrTicketUsed.
func (s *Service) redeem(ctx context.Context, c claims, nonce, session string) (attempt int64, err error) {
	redeemer := session
	if nonce != "" {
		h := sha256.Sum256([]byte(c.ID + "|" + nonce))
		redeemer = "n:" + hex.EncodeToString(h[:16])
	}
	until := time.Unix(c.Exp, 0).Add(ticketKeep).UnixMilli()
	holder, err := s.store.RedeemTicket(ctx, c.ID, redeemer, until)
	if err != nil {
		return 0, err
	}
	if holder != redeemer {
		return 0, ErrTicketUsed
	}
	// Retries of one connect (same nonce) are numbered, so that the entry
	// of an earlier one that lost its client never replaces a later one.
	return s.store.TicketAttempt(ctx, c.ID)
}

// validNonce reports whether a client's nonce has the form
// TicketNonceHeader asks for.
func validNonce(n string) bool {
	if len(n) < 16 || len(n) > 128 {
		return false
	}
	for _, r := range n {
		ok := r == '-' || r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
		if !ok {
			return false
		}
	}
	return true
}
