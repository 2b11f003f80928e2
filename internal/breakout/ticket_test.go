package breakout

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/protocol"
)

// ticketService is a service that only signs and checks tickets, on a
// clock the test sets.
func ticketService(now *time.Time) *Service {
	return &Service{
		opts:   Options{TicketTTL: time.Minute},
		secret: []byte("0123456789abcdef0123456789abcdef"),
		now:    func() time.Time { return *now },
	}
}

var ticketConf = protocol.Conference{E164: "5100001", RealStartTime: 1_790_000_000_123, CreateTime: 1_790_000_000_100, State: protocol.StateRunning}

// respell changes the last character of a base64url text to another with
// the same leading bits: a lenient decoder reads the same bytes.
func respell(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[i^1])
}

// flip changes the character at i.
func flip(s string, i int) string {
	c := byte('A')
	if s[i] == c {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// signClaims signs arbitrary claims as the service would.
func signClaims(s *Service, c any) string {
	body, _ := json.Marshal(c)
	payload := b64.EncodeToString(body)
	return payload + "." + b64.EncodeToString(s.sign(payload))
}

// A ticket is refused when its bytes were changed, when another key
// signed it, when it is for another conference or an earlier conference
// with the same number, and once its short lifetime is over; each refusal
// carries its code.
func TestTicketRefusals(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := ticketService(&now)
	id := Identity{UserID: 7, Role: protocol.RoleHost, Audio: protocol.AudioMuted}
	tok, exp := s.Ticket(ticketConf, id)
	if exp.After(now.Add(time.Minute)) {
		t.Fatalf("the ticket lives until %s, more than a minute after %s", exp, now)
	}
	c, err := s.parse(tok, ticketConf.E164)
	if err != nil || c.Identity != id || c.ofInstance(ticketConf) != nil {
		t.Fatalf("a good ticket: %+v %v", c, err)
	}
	restored := ticketConf
	restored.Node, restored.CreateTime = "sim-2", ticketConf.CreateTime+60_000
	if err := c.ofInstance(restored); err != nil {
		t.Fatalf("the same conference restored onto another node: %v", err)
	}
	if again, _ := s.Ticket(ticketConf, id); again == tok {
		t.Fatal("two tickets for the same user are the same ticket")
	}

	payload, sig, _ := strings.Cut(tok, ".")
	var host claims
	body, _ := b64.DecodeString(payload)
	_ = json.Unmarshal(body, &host)
	host.Identity.UserID = 1
	raised, _ := json.Marshal(host)
	other := ticketService(&now)
	other.secret = []byte("another key, another platform...")
	forged, _ := other.Ticket(ticketConf, id)

	for _, tc := range []struct {
		name, ticket, e164 string
		at                 time.Time
		want               error
		code               string
	}{
		{"none", "", ticketConf.E164, now, ErrTicket, protocol.ErrUnauthorized},
		{"no signature", payload, ticketConf.E164, now, ErrTicket, protocol.ErrUnauthorized},
		{"claims changed", b64.EncodeToString(raised) + "." + sig, ticketConf.E164, now, ErrTicket, protocol.ErrUnauthorized},
		{"signature changed", payload + "." + flip(sig, 10), ticketConf.E164, now, ErrTicket, protocol.ErrUnauthorized},
		{"signature spelled otherwise", payload + "." + respell(sig), ticketConf.E164, now, ErrTicket, protocol.ErrUnauthorized},
		{"another key", forged, ticketConf.E164, now, ErrTicket, protocol.ErrUnauthorized},
		{"another conference", tok, "5100002", now, ErrTicket, protocol.ErrUnauthorized},
		{"too long", tok + strings.Repeat("A", maxTicket), ticketConf.E164, now, ErrTicket, protocol.ErrUnauthorized},
		{"no ticket id", signClaims(s, claims{E164: ticketConf.E164, Start: ticketConf.RealStartTime, Identity: id, Exp: exp.Unix()}), ticketConf.E164, now, ErrTicket, protocol.ErrUnauthorized},
		{"no conference instance", signClaims(s, claims{ID: "x", E164: ticketConf.E164, Identity: id, Exp: exp.Unix()}), ticketConf.E164, now, ErrTicket, protocol.ErrUnauthorized},
		{"expired", tok, ticketConf.E164, exp.Add(time.Second), ErrTicketExpired, CodeTicketExpired},
		{"at its expiry", tok, ticketConf.E164, exp, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.at
			s.now = func() time.Time { return at }
			_, err := s.parse(tc.ticket, tc.e164)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil && ticketCode(err) != tc.code {
				t.Fatalf("code %s, want %s", ticketCode(err), tc.code)
			}
		})
	}

	// The number is another conference's now: the ticket is stale.
	s.now = func() time.Time { return now }
	c, err = s.parse(tok, ticketConf.E164)
	if err != nil {
		t.Fatal(err)
	}
	later := ticketConf
	later.RealStartTime, later.CreateTime = ticketConf.RealStartTime+3_600_000, ticketConf.CreateTime+3_600_000
	if err := c.ofInstance(later); !errors.Is(err, ErrTicketStale) || ticketCode(err) != CodeTicketStale {
		t.Fatalf("a ticket of an ended conference for the new one with its number: %v", err)
	}
}

// FuzzVerifyTicket feeds ticket verification arbitrary text: it never
// panics, refuses with ErrTicket, and accepts only the one spelling of
// claims the service signed, for this conference, unexpired.
func FuzzVerifyTicket(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	s := ticketService(&now)
	id := Identity{UserID: 7, UmsID: 3, Role: protocol.RoleHost, Client: 4, Audio: protocol.AudioUnmuted, Channel: 9}
	good, _ := s.Ticket(ticketConf, id)
	payload, sig, _ := strings.Cut(good, ".")
	before := now.Add(-2 * time.Minute)
	s.now = func() time.Time { return before }
	expired, _ := s.Ticket(ticketConf, id)
	s.now = func() time.Time { return now }
	other := ticketConf
	other.E164 = "5100002"
	elsewhere, _ := s.Ticket(other, id)
	for _, seed := range []string{
		good, expired, elsewhere, payload, sig, payload + ".", "." + sig, sig + "." + payload,
		payload + "." + respell(sig), good + ".", good + "=", strings.ToUpper(good),
		signClaims(s, map[string]any{"j": "x", "e": ticketConf.E164, "s": ticketConf.RealStartTime, "x": now.Unix() + 60, "u": 1, "E": "5100002"}),
		signClaims(s, []any{1, 2}), signClaims(s, nil), signClaims(s, "x"),
		"", ".", "..", "a.b", "%", strings.Repeat("A", maxTicket+1),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ticket string) {
		c, err := s.parse(ticket, ticketConf.E164)
		if err != nil {
			if !errors.Is(err, ErrTicket) {
				t.Fatalf("refusal %v is not ErrTicket", err)
			}
			return
		}
		p, _, _ := strings.Cut(ticket, ".")
		if ticket != p+"."+b64.EncodeToString(s.sign(p)) {
			t.Fatalf("accepted %q, another spelling of a signed ticket", ticket)
		}
		if c.E164 != ticketConf.E164 || c.ID == "" || c.Start == 0 || now.Unix() > c.Exp {
			t.Fatalf("accepted claims %+v", c)
		}
	})
}
