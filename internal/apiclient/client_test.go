package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/convene/convene/internal/apiclient"
)

// The client sends its token and JSON, decodes a success, and turns any
// other answer into an *Error: the envelope's code, or HTTP_<status> for
// a page that is not the API's.
func TestClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"code":"UNAUTHORIZED","message":"send a valid token"}}`)
			return
		}
		switch r.URL.Path {
		case "/v1/conferences":
			var q apiclient.CreateConferenceRequest
			if err := json.NewDecoder(r.Body).Decode(&q); err != nil || r.Header.Get("Content-Type") != "application/json" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(apiclient.Conference{E164: "6600001", Name: q.Name, Domain: q.Domain})
		case "/v1/conferences/6600002":
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"code":"CONF_NOT_FOUND","message":"conference 6600002 does not exist; it may have ended"}}`)
		default:
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html>bad gateway</html>")
		}
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()

	c := apiclient.New(srv.URL+"/", "tok")
	t.Cleanup(c.CloseIdleConnections)
	conf, err := c.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: "standup", Domain: "acme"})
	if err != nil || conf.E164 != "6600001" || conf.Name != "standup" {
		t.Fatalf("CreateConference = %+v, %v", conf, err)
	}
	for _, tc := range []struct {
		name    string
		client  *apiclient.Client
		e164    string
		status  int
		code    string
		message string
	}{
		{"the API's refusal", c, "6600002", 404, "CONF_NOT_FOUND", "conference 6600002 does not exist; it may have ended"},
		{"a page that is not the API's", c, "6600003", 502, "HTTP_502", "<html>bad gateway</html>"},
		{"a wrong token", apiclient.New(srv.URL, "nope"), "6600001", 401, "UNAUTHORIZED", "send a valid token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.Conference(ctx, tc.e164)
			var ae *apiclient.Error
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code || ae.Message != tc.message {
				t.Fatalf("Conference = %#v, want %d %s %q", err, tc.status, tc.code, tc.message)
			}
		})
	}
}
