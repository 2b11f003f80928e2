package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// Create.RunRemote loads a platform in another process: every create
// (warm-up and timed) goes to its API with the token and the domain asked
// for, and the platform's CPU per create is read from its metrics.
func TestBenchCreateAgainstAnOutsidePlatform(t *testing.T) {
	var creates, scrapes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer outside-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/conferences":
			var body bytes.Buffer
			_, _ = body.ReadFrom(r.Body)
			if !strings.Contains(body.String(), `"domain":"acme"`) {
				t.Errorf("create for another domain: %s", body.String())
			}
			creates.Add(1)
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"e164":"1234"}`))
		case r.Method == http.MethodGet && r.URL.Path == "/metrics":
			n := scrapes.Add(1)
			fmt.Fprintf(w, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %d.5\n", 10*n)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()

	b := Create{Count: 50, Warmup: 10, Concurrency: 4}
	api, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := b.RunRemote(context.Background(), api, "outside-token", "acme", &out)
	if err != nil {
		t.Fatal(err)
	}
	if got := creates.Load(); got != 60 {
		t.Fatalf("the platform saw %d creates, want 10 warm-up and 50 timed", got)
	}
	if res.created != 50 || res.errors != 0 || len(res.lat) != 50 {
		t.Fatalf("result: %d created, %d refused, %d latencies", res.created, res.errors, len(res.lat))
	}
	if res.serverCPU != 10 {
		t.Fatalf("platform CPU %.1f s, want the 10 s its metrics said it used", res.serverCPU)
	}
	res.Print(&out)
	if !strings.Contains(out.String(), "platform CPU     200000 µs per create") {
		t.Fatalf("output does not give the platform's CPU per create:\n%s", out.String())
	}

}
