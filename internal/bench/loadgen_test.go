package bench

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/convene/convene/internal/apiclient"
)

// The load generator sends the API's create request with the token, takes
// a 201 as a create, turns an error envelope into an *apiclient.Error, and
// dials again after the server drops its connection.
func TestRawCreator(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/conferences" || r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("request %d: %s %s auth %q", n, r.Method, r.URL.Path, r.Header.Get("Authorization"))
		}
		var q apiclient.CreateConferenceRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&q); err != nil || q.Domain != "acme" || q.Scale != 8 || q.Resolution != "720p" {
			t.Errorf("request %d: body %+v, %v", n, q, err)
		}
		switch n {
		case 2:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":{"code":"LICENSE_EXHAUSTED","message":"full"}}`))
			return
		case 3:
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"e164":"1234"}`))
	}))
	defer srv.Close()

	c, err := newRawCreator(strings.TrimPrefix(srv.URL, "http://"), "tok", "acme")
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	ctx := context.Background()
	if err := c.create(ctx); err != nil {
		t.Fatalf("first create: %v", err)
	}
	var ae *apiclient.Error
	if err := c.create(ctx); !errors.As(err, &ae) || ae.Code != "LICENSE_EXHAUSTED" || ae.Status != http.StatusConflict {
		t.Fatalf("refused create = %v, want LICENSE_EXHAUSTED", err)
	}
	if err := c.create(ctx); err != nil {
		t.Fatalf("third create: %v", err)
	}
	// The server closed the connection after the third answer: the next
	// create dials again.
	if err := c.create(ctx); err != nil {
		t.Fatalf("create after the server closed: %v", err)
	}
	if got := calls.Load(); got != 4 {
		t.Fatalf("server saw %d creates, want 4", got)
	}
}
