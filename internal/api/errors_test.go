package api

import (
	"fmt"
	"testing"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/protocol"
)

// Whatever code a party refuses with, the API answers the codebook's
// status for it, with the party's code and sentence: the status table is
// the codebook, not a list of its own.
func TestRefusalStatuses(t *testing.T) {
	h := newHarness(t)
	h.fake(protocol.SubjectCMMAU(platform), func(m *bus.Msg) any {
		var req protocol.CreateConfReq
		_ = m.Decode(&req)
		return nack(protocol.MAUCreateConfNack, req.Name, "refused with "+req.Name)
	})
	for _, e := range codes.All() {
		t.Run(e.Code, func(t *testing.T) {
			body := fmt.Sprintf(`{"name":%q,"domain":"acme","scale":8,"resolution":"720p","duration_minutes":30}`, e.Code)
			status, resp := h.do("POST", "/v1/conferences", body)
			wantError(t, status, resp, e.Status, e.Code, "refused with "+e.Code)
		})
	}
}
