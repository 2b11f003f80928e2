package breakout

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// A ticket is how a WebSocket client proves who it is: the conference
// manager (an API token holder) asks for one on the user's behalf
// (POST /v1/conferences/{e164}/breakout/tickets), saying the user's ids,
// its role and its client type; the client connects with ?ticket=. It is
// the claims in base64url JSON, a dot, and their HMAC-SHA256 with a
// secret every instance shares.

type claims struct {
	E164 string `json:"e"`
	Identity
	Exp int64 `json:"x"` // Unix s
}

var b64 = base64.RawURLEncoding

// Ticket signs a ticket for a user of a conference, valid for the
// service's TicketTTL; it returns the ticket and when it expires.
func (s *Service) Ticket(e164 string, id Identity) (string, time.Time) {
	exp := s.now().Add(s.opts.TicketTTL).Truncate(time.Second)
	body, _ := json.Marshal(claims{E164: e164, Identity: id, Exp: exp.Unix()})
	payload := b64.EncodeToString(body)
	return payload + "." + b64.EncodeToString(s.sign(payload)), exp
}

func (s *Service) sign(payload string) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// verify checks a ticket for a conference and returns who it vouches for.
func (s *Service) verify(ticket, e164 string) (Identity, error) {
	payload, sig, ok := strings.Cut(ticket, ".")
	if !ok {
		return Identity{}, fmt.Errorf("%w: not <payload>.<signature>", ErrTicket)
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.sign(payload)) {
		return Identity{}, fmt.Errorf("%w: bad signature", ErrTicket)
	}
	body, err := b64.DecodeString(payload)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: payload is not base64url", ErrTicket)
	}
	var c claims
	if err := json.Unmarshal(body, &c); err != nil {
		return Identity{}, fmt.Errorf("%w: payload: %w", ErrTicket, err)
	}
	switch {
	case c.E164 != e164:
		return Identity{}, fmt.Errorf("%w: it is for conference %s", ErrTicket, c.E164)
	case s.now().Unix() > c.Exp:
		return Identity{}, fmt.Errorf("%w: it expired at %s", ErrTicket, time.Unix(c.Exp, 0).UTC().Format(time.RFC3339))
	}
	return c.Identity, nil
}
