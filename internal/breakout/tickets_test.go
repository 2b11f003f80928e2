package breakout_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
	"github.com/convene/convene/internal/testkit"
)

// issue asks an instance for a ticket.
func issue(t *testing.T, in *instance, e164 string, req breakout.TicketRequest) breakout.TicketResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	tr, err := breakout.IssueTicket(ctx, http.DefaultClient, in.base, token, e164, req)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// refused dials with a ticket and wants the refusal's code.
func refused(t *testing.T, in *instance, path, nonce, code string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := breakout.DialNonce(ctx, in.base, path, nonce)
	if err == nil {
		_ = c.CloseNow()
		t.Fatalf("connected, want %s", code)
	}
	if !strings.Contains(err.Error(), `"code":"`+code+`"`) {
		t.Fatalf("refused with %v, want %s", err, code)
	}
}

// entered checks that a connection is in the conference: its conference
// info request is answered.
func entered(t *testing.T, c *breakout.Client, e164 string, id uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Send(ctx, protocol.ConfInfoRequest{Type: protocol.BMSConfInfoRequest, ConfID: e164, UserID: id}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("user %d: %v", id, err)
		}
		if m.Type == protocol.BMSConfInfoNotify {
			if m.StatusCode != 0 {
				t.Fatalf("user %d: conference info %s", id, m.Data)
			}
			return
		}
	}
}

// A ticket lets one connection in: a second one with it is refused, on
// the instance that took the first and on any other, while the first is
// connected and after it left.
func TestTicketIsSingleUse(t *testing.T) {
	e := start(t, setup{insts: 2})
	a, b := e.insts[0], e.insts[1]
	e164 := e.conference()
	tr := issue(t, a, e164, breakout.TicketRequest{UserID: 5})
	first, err := breakout.Dial(context.Background(), a.base, tr.URL)
	if err != nil {
		t.Fatal(err)
	}
	entered(t, first, e164, 5)
	refused(t, a, tr.URL, "", breakout.CodeTicketUsed)
	refused(t, b, tr.URL, "", breakout.CodeTicketUsed)
	_ = first.Close()
	refused(t, b, tr.URL, "", breakout.CodeTicketUsed)

	// Claims changed (a participant makes itself user 1, the host): the
	// signature no longer matches.
	tr = issue(t, a, e164, breakout.TicketRequest{UserID: 6})
	payload, sig, _ := strings.Cut(tr.Ticket, ".")
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || !strings.Contains(string(body), `"u":6`) {
		t.Fatalf("ticket claims %s: %v", body, err)
	}
	raised := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(body), `"u":6`, `"u":1`, 1)))
	tampered := "/v1/conferences/" + e164 + "/breakout/ws?ticket=" + raised + "." + sig
	refused(t, a, tampered, "", protocol.ErrUnauthorized)
}

// A client that did not get the answer to its connect connects again with
// the same ticket and nonce: the redemption is its own, so it gets in;
// anyone else with the ticket is refused. A plain GET of the URL does not
// use the ticket up.
func TestTicketRetryKeepsItsUser(t *testing.T) {
	e := start(t, setup{insts: 2})
	a, b := e.insts[0], e.insts[1]
	e164 := e.conference()
	tr := issue(t, a, e164, breakout.TicketRequest{UserID: 5})

	resp, err := http.Get(a.base + tr.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("a plain GET of the WebSocket URL: %s", resp.Status)
	}
	refused(t, a, tr.URL, "short", protocol.ErrBadRequest)

	const nonce = "0123456789abcdef-retry"
	ctx := context.Background()
	first, err := breakout.DialNonce(ctx, a.base, tr.URL, nonce)
	if err != nil {
		t.Fatal(err)
	}
	_ = first.CloseNow() // the answer never reached the client
	again, err := breakout.DialNonce(ctx, b.base, tr.URL, nonce)
	if err != nil {
		t.Fatalf("the retry of a connect with its nonce: %v", err)
	}
	defer again.CloseNow()
	entered(t, again, e164, 5)
	refused(t, a, tr.URL, "0123456789abcdef-thief", breakout.CodeTicketUsed)
	refused(t, b, tr.URL, "", breakout.CodeTicketUsed)
}

// A ticket names the conference instance: once the conference ended and a
// new one took its number, the ticket lets no one into the new one.
func TestTicketOfAnEndedConference(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	ctx := context.Background()
	e164 := e.conference()
	old := issue(t, in, e164, breakout.TicketRequest{UserID: 5, Role: "host"})
	if err := e.client.EndConference(ctx, e164); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, wait, testkit.Cond("the conference ended", func() bool {
		_, err := e.st.Store.Conference(ctx, e164)
		return errors.Is(err, store.ErrConfNotFound)
	}))
	again, err := e.client.CreateConference(ctx, apiclient.CreateConferenceRequest{
		Name: "same number", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 60, E164: e164,
	})
	if err != nil || again.E164 != e164 {
		t.Fatalf("a new conference with number %s: %+v %v", e164, again, err)
	}
	refused(t, in, old.URL, "", breakout.CodeTicketStale)
	// A ticket of the new conference lets the user in.
	e.connect(in, e164, who{id: 5, host: true})
}

// A ticket is valid for a short while: past its expiry on the service's
// clock it is refused; a new one lets the user in.
func TestTicketExpires(t *testing.T) {
	clk := &fakeClock{}
	e := start(t, setup{clock: clk.now})
	in := e.insts[0]
	e164 := e.conference()
	asked := clk.now()
	tr := issue(t, in, e164, breakout.TicketRequest{UserID: 5})
	if limit := asked.Add(time.Minute); tr.ExpiresAt.After(limit) {
		t.Fatalf("the ticket expires at %s, after %s", tr.ExpiresAt, limit)
	}
	clk.to(tr.ExpiresAt.Add(time.Second))
	refused(t, in, tr.URL, "", breakout.CodeTicketExpired)
	e.connect(in, e164, who{id: 5})
}
