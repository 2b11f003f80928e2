package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// TestRequestsWaitOutAHandover: a request sent while no scheduler listens
// (the active one stood down, the standby has not taken the lease yet)
// is sent again until one does, within the lease's term, instead of
// failing at once.
func TestRequestsWaitOutAHandover(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, body string
		answer                   any
		status                   int
	}{
		{
			name: "create", method: "POST", path: "/v1/conferences",
			body:   `{"name":"handover","domain":"acme","scale":8,"resolution":"720p","duration_minutes":30}`,
			answer: protocol.CreateConfAck{Type: protocol.MAUCreateConfAck, Conf: protocol.Conference{E164: "6600001", Domain: "acme", Scale: 8, Resolution: "720p"}},
			status: http.StatusCreated,
		},
		{
			name: "end", method: "DELETE", path: "/v1/conferences/6600077",
			answer: protocol.Ack{Type: protocol.MAUReleaseConfAck, E164: "6600077"},
			status: http.StatusNoContent,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.cfg.Scheduler.LeaseTTL, h.srv.cfg.Scheduler.LeaseRenew = 30*time.Second, time.Second
			entered := make(chan struct{}, 1)
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				entered <- struct{}{}
				h.srv.Handler().ServeHTTP(w, r)
			}))
			t.Cleanup(hs.Close)
			done := make(chan int, 1)
			go func() {
				req, _ := http.NewRequestWithContext(t.Context(), tc.method, hs.URL+tc.path, strings.NewReader(tc.body))
				req.Header.Set("Authorization", "Bearer "+testToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- 0
					return
				}
				resp.Body.Close()
				done <- resp.StatusCode
			}()
			<-entered
			// Nobody listens yet: the API must not give up.
			select {
			case status := <-done:
				t.Fatalf("with no scheduler listening, the request answered %d at once", status)
			case <-time.After(300 * time.Millisecond):
			}
			h.fake(protocol.SubjectCMMAU(platform), func(*bus.Msg) any { return tc.answer })
			if status := <-done; status != tc.status {
				t.Fatalf("after the standby took over: %d, want %d", status, tc.status)
			}
		})
	}
}
