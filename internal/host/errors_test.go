package host

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/convene/convene/internal/codes"
)

// Every code the host gives is in the codebook, and an HTTP refusal is
// written with the codebook's status and envelope.
func TestHostCodesAreTheCodebooks(t *testing.T) {
	for _, c := range []string{CodePluginStopped, CodeRouteGone, CodeUnknownPlugin, CodeBadRequest,
		CodePluginFailed, CodeHostNotRunning, CodeHostConfig} {
		e, ok := codes.Lookup(c)
		if !ok {
			t.Fatalf("code %s is not in the codebook", c)
		}
		rec := httptest.NewRecorder()
		writeError(rec, c, "what to do")
		if rec.Code != e.Status {
			t.Fatalf("%s answered %d, the codebook says %d", c, rec.Code, e.Status)
		}
		if got := rec.Header().Get("Retry-After"); (got != "") != (e.Status == http.StatusServiceUnavailable) {
			t.Fatalf("%s: Retry-After %q with status %d", c, got, e.Status)
		}
		want := `{"error":{"code":"` + c + `","message":"what to do"}}` + "\n"
		if rec.Body.String() != want {
			t.Fatalf("%s: body %q, want %q", c, rec.Body.String(), want)
		}
	}
}
