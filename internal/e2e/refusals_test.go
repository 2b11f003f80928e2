package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

func redisZ(score int64, member string) redis.Z {
	return redis.Z{Score: float64(score), Member: member}
}

// nodeFault refuses messages of the given types (create and restore when
// none are given).
func nodeFault(only ...string) medianode.Fault {
	return medianode.Fault{Nack: "TEST_REFUSAL", Only: only}
}

// Every refusal answers with its own code and leaves the store, the
// licence and the nodes as they were.
func TestRefusalsLeaveNothingBehind(t *testing.T) {
	tests := []struct {
		name   string
		nodes  int
		limit  int
		prep   func(e *env)
		mod    func(r *apiclient.CreateConferenceRequest)
		status int
		code   string
	}{
		{name: "unknown domain", nodes: 1, mod: func(r *apiclient.CreateConferenceRequest) { r.Domain = "nobody" }, status: 404, code: protocol.ErrDomainNotFound},
		{name: "domain of a platform not served", nodes: 1, mod: func(r *apiclient.CreateConferenceRequest) { r.Domain = "elsewhere" }, status: 503, code: protocol.ErrPlatformNotServed},
		{name: "disabled domain", nodes: 1, mod: func(r *apiclient.CreateConferenceRequest) { r.Domain = "closed" }, status: 403, code: protocol.ErrDomainDisabled},
		{name: "licence exhausted", nodes: 1, limit: 1, prep: func(e *env) { e.mustCreate("first") }, status: 409, code: protocol.ErrLicenseExhausted},
		{name: "number in use", nodes: 1, prep: func(e *env) {
			e.mustCreate("first", func(r *apiclient.CreateConferenceRequest) { r.E164 = "5100777" })
		}, mod: func(r *apiclient.CreateConferenceRequest) { r.E164 = "5100777" }, status: 409, code: protocol.ErrE164InUse},
		{name: "no media node", nodes: 0, status: 503, code: protocol.ErrNoResources},
		{name: "every node full", nodes: 2, prep: func(e *env) {
			for _, n := range e.st.Nodes {
				n.SetFault(medianode.Fault{Nack: "NODE_FULL"})
			}
		}, status: 502, code: protocol.ErrNodeRejected},
		{name: "node refuses", nodes: 1, prep: func(e *env) { e.st.Nodes[0].SetFault(nodeFault()) }, status: 502, code: protocol.ErrNodeRejected},
		{name: "node does not answer", nodes: 1, prep: func(e *env) { e.st.Nodes[0].SetFault(medianode.Fault{Silent: true}) }, status: 504, code: protocol.ErrNodeTimeout},
		// Its answer comes more than twice the scheduler's 1.5 s timeout
		// late: a loaded machine's timers do not close that gap.
		{name: "node answers too late", nodes: 1, prep: func(e *env) { e.st.Nodes[0].SetFault(medianode.Fault{AckDelay: 4 * time.Second}) }, status: 504, code: protocol.ErrNodeTimeout},
		{name: "RMS does not answer", nodes: 1, prep: func(e *env) {
			if err := e.st.RMS.Shutdown(context.Background()); err != nil {
				e.t.Fatal(err)
			}
		}, status: 504, code: protocol.ErrRMSTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, setup{nodes: tt.nodes, limit: tt.limit})
			if tt.prep != nil {
				tt.prep(e)
			}
			keys, used, hosted := e.storeKeys(), e.inUse("acme", "8_720p"), e.hosted()
			_, err := e.create("refused", func(r *apiclient.CreateConferenceRequest) {
				if tt.mod != nil {
					tt.mod(r)
				}
			})
			ae, ok := err.(*apiclient.Error)
			if !ok || ae.Status != tt.status || ae.Code != tt.code {
				t.Fatalf("create: %v; want %d %s", err, tt.status, tt.code)
			}
			if ae.Message == "" {
				t.Fatal("refusal without a message")
			}
			if after := e.storeKeys(); !slices.Equal(keys, after) {
				t.Fatalf("store changed:\nbefore %v\nafter  %v", keys, after)
			}
			if after := e.inUse("acme", "8_720p"); after != used {
				t.Fatalf("licence count %d, was %d", after, used)
			}
			// A node that acknowledged too late must be told to let go.
			testkit.Eventually(t, testkit.Wait, testkit.Cond("the nodes to host what they did before", func() bool {
				now := e.hosted()
				for id, n := range hosted {
					if now[id] != n {
						return false
					}
				}
				return true
			}))
		})
	}
}

// Bad requests get 400 with a message that names the field.
func TestBadRequestsNameTheField(t *testing.T) {
	e := start(t, setup{nodes: 1})
	url := "http://" + e.st.API.Addr() + "/v1/conferences"
	tests := []struct {
		name, body, field string
	}{
		{"not JSON", `{"name": "x",`, "JSON"},
		{"unknown field", `{"name":"x","domain":"acme","scale":8,"resolution":"720p","duration_minutes":5,"colour":"red"}`, `"colour"`},
		{"scale as a string", `{"name":"x","domain":"acme","scale":"big","resolution":"720p","duration_minutes":5}`, `"scale"`},
		{"name as a number", `{"name":5,"domain":"acme","scale":8,"resolution":"720p","duration_minutes":5}`, `"name"`},
		{"public as a string", `{"name":"x","domain":"acme","scale":8,"resolution":"720p","duration_minutes":5,"public":"yes"}`, `"public"`},
		{"invited not a list", `{"name":"x","domain":"acme","scale":8,"resolution":"720p","duration_minutes":5,"invited":"mt1"}`, `"invited"`},
		{"missing name", `{"domain":"acme","scale":8,"resolution":"720p","duration_minutes":5}`, `"name"`},
		{"scale not a tier", `{"name":"x","domain":"acme","scale":10,"resolution":"720p","duration_minutes":5}`, `"scale"`},
		{"unknown resolution", `{"name":"x","domain":"acme","scale":8,"resolution":"4k","duration_minutes":5}`, `"resolution"`},
		{"no duration", `{"name":"x","domain":"acme","scale":8,"resolution":"720p"}`, `"duration_minutes"`},
		{"e164 with letters", `{"name":"x","domain":"acme","scale":8,"resolution":"720p","duration_minutes":5,"e164":"12ab"}`, `"e164"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(tt.body))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var eb codes.Envelope
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatalf("error body %s: %v", body, err)
			}
			if resp.StatusCode != 400 || eb.Error.Code != protocol.ErrBadRequest || !strings.Contains(eb.Error.Message, tt.field) {
				t.Fatalf("got %d %s, want 400 BAD_REQUEST naming %s", resp.StatusCode, body, tt.field)
			}
		})
	}
	if keys := e.storeKeys(); len(keys) != 0 {
		t.Fatalf("bad requests wrote to the store: %v", keys)
	}
	// Without the token: 401.
	resp, err := http.Post(url, "application/json", bytes.NewBufferString(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
}
