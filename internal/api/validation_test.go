package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
)

// body builds a create body from the valid one with fields replaced
// (raw JSON values) or, with value "", removed.
func body(changes ...string) string {
	fields := []string{
		`"name":"weekly"`, `"domain":"acme"`, `"scale":8`, `"resolution":"720p"`, `"duration_minutes":60`,
	}
	var extra []string
	for i := 0; i+1 < len(changes); i += 2 {
		key, val := changes[i], changes[i+1]
		found := false
		for j, f := range fields {
			if strings.HasPrefix(f, `"`+key+`":`) {
				found = true
				if val == "" {
					fields[j] = ""
				} else {
					fields[j] = `"` + key + `":` + val
				}
			}
		}
		if !found {
			extra = append(extra, `"`+key+`":`+val)
		}
	}
	var parts []string
	for _, f := range append(fields, extra...) {
		if f != "" {
			parts = append(parts, f)
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// TestCreateValidation: every refused body is a 400 whose message names
// the field, and the scheduler is never asked.
func TestCreateValidation(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxDurationMinutes = 600 })
	sched := h.fake(protocol.SubjectCMMAU(platform), func(m *bus.Msg) any {
		return protocol.CreateConfAck{Type: protocol.MAUCreateConfAck}
	})
	for _, tc := range []struct {
		name, body, want string
	}{
		{"empty body", ``, `body is empty: send a JSON object`},
		{"not JSON", `{"name" 1}`, `body is not valid JSON: invalid character '1' after object key at offset 9`},
		{"truncated", `{"name":"x",`, `body is not valid JSON: it ends early at offset 12`},
		{"array", `[1,2]`, `body must be a JSON object, not an array`},
		{"string", `"x"`, `body must be a JSON object, not string`},
		{"two objects", body() + `{}`, `body must hold one JSON object and nothing after it`},
		{"trailing garbage", body() + ` x`, `body must hold one JSON object and nothing after it`},
		{"unknown field", body("foo", `1`), `unknown field "foo"`},
		{"password field misspelt", body("passwd", `"x"`), `unknown field "passwd"`},
		{"name not a string", body("name", `5`), `field "name" must be a string`},
		{"domain not a string", body("domain", `true`), `field "domain" must be a string`},
		{"scale a string", body("scale", `"8"`), `field "scale" must be a number`},
		{"scale a fraction", body("scale", `8.5`), `field "scale" must be a whole number`},
		{"resolution a number", body("resolution", `720`), `field "resolution" must be a string`},
		{"duration a string", body("duration_minutes", `"60"`), `field "duration_minutes" must be a number`},
		{"e164 a number", body("e164", `6600001`), `field "e164" must be a string`},
		{"public a string", body("public", `"yes"`), `field "public" must be true or false`},
		{"recording a number", body("recording", `1`), `field "recording" must be true or false`},
		{"invited a string", body("invited", `"mt1"`), `field "invited" must be an array of strings`},
		{"invited of numbers", body("invited", `[1]`), `field "invited" must be an array of strings`},
		{"name missing", body("name", ""), `field "name" is required`},
		{"name blank", body("name", `"  "`), `field "name" is required`},
		{"name too long", body("name", `"`+strings.Repeat("é", 129)+`"`), `field "name" must be at most 128 characters, not 129`},
		{"domain missing", body("domain", ""), `field "domain" is required`},
		{"domain bad", body("domain", `"a.b"`), `field "domain" must be 1 to 64 letters, digits, '-' or '_'`},
		{"scale missing", body("scale", ""), `field "scale" is required: one of 8, 32, 64, 192`},
		{"scale bad", body("scale", `16`), `field "scale" must be one of 8, 32, 64, 192`},
		{"resolution missing", body("resolution", ""), `field "resolution" is required: "720p" or "1080p"`},
		{"resolution bad", body("resolution", `"4k"`), `field "resolution" must be "720p" or "1080p"`},
		{"duration missing", body("duration_minutes", ""), `field "duration_minutes" is required: 1 to 600 minutes`},
		{"duration negative", body("duration_minutes", `-5`), `field "duration_minutes" must be between 1 and 600`},
		{"duration too long", body("duration_minutes", `601`), `field "duration_minutes" must be between 1 and 600`},
		{"e164 letters", body("e164", `"66abc"`), `field "e164" must be 3 to 32 digits`},
		{"e164 short", body("e164", `"12"`), `field "e164" must be 3 to 32 digits`},
		// The scheduler keeps 32 bytes: the API refuses what it would.
		{"password too long", body("password", `"`+strings.Repeat("p", 33)+`"`), `field "password" must be at most 32 bytes (32 ASCII characters), not 33`},
		{"password of 64", body("password", `"`+strings.Repeat("p", 64)+`"`), `field "password" must be at most 32 bytes`},
		{"password control", body("password", `"a\nb"`), `field "password" holds U+000A (a control character)`},
		{"name with a newline", body("name", `"a\nb"`), `field "name" holds U+000A (a control character) at character 2`},
		{"name with an escape", body("name", `"\u001b[31mred"`), `field "name" holds U+001B (an escape)`},
		{"name with a bidi override", body("name", `"invoice\u202Efdp.exe"`), `field "name" holds U+202E (a bidirectional control) at character 8`},
		{"name with an isolate", body("name", `"a\u2067b"`), `field "name" holds U+2067 (a bidirectional control)`},
		{"name with a zero-width space", body("name", `"ad\u200Bmin"`), `field "name" holds U+200B (a zero-width character)`},
		{"invited with a control", body("invited", `["mt\u0007"]`), `field "invited[0]" holds U+0007`},
		{"invited empty alias", body("invited", `["mt1",""]`), `field "invited[1]" must not be empty`},
		{"invited long alias", body("invited", `["`+strings.Repeat("a", 129)+`"]`), `field "invited[0]" must be at most 128 characters`},
		{"too large", `{"name":"` + strings.Repeat("x", httpkit.MaxBody) + `"}`, `body is larger than 1048576 bytes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, resp := h.do("POST", "/v1/conferences", tc.body)
			wantError(t, status, resp, http.StatusBadRequest, codes.BadRequest, tc.want)
		})
	}
	if n := len(sched.received()); n != 0 {
		t.Fatalf("the scheduler was asked %d times for refused bodies", n)
	}
	t.Run("valid body passes", func(t *testing.T) {
		status, resp := h.do("POST", "/v1/conferences", body("e164", `"6600123"`, "invited", `["mt1"]`))
		if status != http.StatusCreated || len(sched.received()) != 1 {
			t.Fatalf("status %d: %s", status, resp)
		}
	})
}

// TestOtherBodies checks the 400s of the other request bodies, query
// parameters and path parameters.
func TestOtherBodies(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxDurationMinutes = 600 })
	for _, subject := range []string{protocol.SubjectCMMAU(platform), protocol.SubjectConfControl("6600001")} {
		h.fake(subject, func(m *bus.Msg) any {
			t.Errorf("the scheduler was asked %s for a refused request", m.Type)
			return nil
		})
	}
	tpl := func(extra string) string {
		return `{"name":"t","domain":"acme","scale":32,"resolution":"1080p","duration_minutes":30` + extra + `}`
	}
	for _, tc := range []struct {
		name, method, path, body, want string
	}{
		{"delay missing", "POST", "/v1/conferences/6600001/delay", `{}`, `field "minutes" is required: at least 1 minute (the whole conference may last at most 600)`},
		{"delay zero", "POST", "/v1/conferences/6600001/delay", `{"minutes":0}`, `field "minutes" is required`},
		{"delay a string", "POST", "/v1/conferences/6600001/delay", `{"minutes":"5"}`, `field "minutes" must be a number`},
		{"delay unknown field", "POST", "/v1/conferences/6600001/delay", `{"minute":5}`, `unknown field "minute"`},
		{"delay bad path", "POST", "/v1/conferences/66x/delay", `{"minutes":5}`, `e164 "66x" in the path must be 3 to 32 digits`},
		{"patch empty", "PATCH", "/v1/conferences/6600001", `{}`, `field "name" or "password" is required`},
		{"patch blank name", "PATCH", "/v1/conferences/6600001", `{"name":""}`, `field "name" is required`},
		{"patch name a number", "PATCH", "/v1/conferences/6600001", `{"name":1}`, `field "name" must be a string`},
		{"patch long password", "PATCH", "/v1/conferences/6600001", `{"password":"` + strings.Repeat("p", 33) + `"}`, `field "password" must be at most 32 bytes`},
		{"rename with a bidi override", "PATCH", "/v1/conferences/6600001", `{"name":"a\u202Db"}`, `field "name" holds U+202D (a bidirectional control)`},
		{"rename with a control", "PATCH", "/v1/conferences/6600001", `{"name":"a\rb"}`, `field "name" holds U+000D`},
		{"template name with a zero-width joiner", "POST", "/v1/templates", `{"name":"t\u200D","domain":"acme","scale":8,"resolution":"720p","duration_minutes":30}`, `field "name" holds U+200D (a zero-width character)`},
		{"template update name with an escape", "PUT", "/v1/templates/6600001", `{"name":"\u001b]0;x\u0007","domain":"acme","scale":8,"resolution":"720p","duration_minutes":30}`, `field "name" holds U+001B`},
		{"template long password", "POST", "/v1/templates", tpl(`,"password":"` + strings.Repeat("p", 33) + `"`), `field "password" must be at most 32 bytes`},
		{"monitor no ip", "POST", "/v1/conferences/6600001/monitors", `{"port":5000}`, `field "ip" is required`},
		{"monitor bad ip", "POST", "/v1/conferences/6600001/monitors", `{"ip":"host","port":5000}`, `field "ip" must be an IPv4 or IPv6 address, not "host"`},
		{"monitor no port", "POST", "/v1/conferences/6600001/monitors", `{"ip":"10.0.0.1"}`, `field "port" is required`},
		{"monitor port range", "POST", "/v1/conferences/6600001/monitors", `{"ip":"10.0.0.1","port":70000}`, `field "port" must be between 1 and 65535`},
		{"monitor port a string", "POST", "/v1/conferences/6600001/monitors", `{"ip":"10.0.0.1","port":"80"}`, `field "port" must be a number`},
		{"license missing", "PUT", "/v1/domains/acme/license", `{}`, `field "limits" is required`},
		{"license unknown class", "PUT", "/v1/domains/acme/license", `{"limits":{"9_720p":1}}`, `field "limits" has unknown class "9_720p": use 8_720p, 8_1080p, 32_720p`},
		{"license negative", "PUT", "/v1/domains/acme/license", `{"limits":{"8_720p":-1}}`, `field "limits.8_720p" must not be negative`},
		{"license not numbers", "PUT", "/v1/domains/acme/license", `{"limits":{"8_720p":"x"}}`, `field "limits" must be an object whose values are numbers`},
		{"license bad domain", "PUT", "/v1/domains/a.b/license", `{"limits":{"8_720p":1}}`, `domain "a.b" in the path must be 1 to 64 letters`},
		{"template missing name", "POST", "/v1/templates", `{"domain":"acme","scale":8,"resolution":"720p","duration_minutes":30}`, `field "name" is required`},
		{"template bad scale", "POST", "/v1/templates", `{"name":"t","domain":"acme","scale":9,"resolution":"720p","duration_minutes":30}`, `field "scale" must be one of 8, 32, 64, 192`},
		{"template recording", "POST", "/v1/templates", tpl(`,"recording":true`), `unknown field "recording"`},
		{"template e164 mismatch", "PUT", "/v1/templates/6600001", tpl(`,"e164":"6600002"`), `field "e164" must be left out or match the path (6600001)`},
		{"list public_only", "GET", "/v1/domains/acme/conferences?public_only=maybe", ``, `query parameter "public_only" must be true or false, not "maybe"`},
		{"list state", "GET", "/v1/domains/acme/conferences?state=ended", ``, `query parameter "state" must be creating, running or pending-restore, not "ended"`},
		{"templates public_only", "GET", "/v1/domains/acme/templates?public_only=2", ``, `query parameter "public_only" must be true or false`},
		{"events limit", "GET", "/v1/events?limit=0", ``, `query parameter "limit" must be between 1 and 10000`},
		{"platform list state", "GET", "/v1/platforms/plat-a/conferences?state=ended", ``, `query parameter "state" must be creating, running or pending-restore, not "ended"`},
		{"events e164", "GET", "/v1/events?e164=abc", ``, `query parameter "e164" must be 3 to 32 digits`},
		{"registry path", "GET", "/v1/registry/x", ``, `e164 "x" in the path must be 3 to 32 digits`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, resp := h.do(tc.method, tc.path, tc.body)
			wantError(t, status, resp, http.StatusBadRequest, codes.BadRequest, tc.want)
		})
	}
}

func TestExpected(t *testing.T) {
	type inner struct {
		N int `json:"n"`
	}
	type outer struct {
		In  inner `json:"in"`
		Ptr *bool `json:"ptr"`
	}
	for _, tc := range []struct{ body, want string }{
		{`{"in":{"n":"x"}}`, `field "in.n" must be a number`},
		{`{"ptr":1}`, `field "ptr" must be true or false`},
		{`{"in":5}`, `field "in" must be an object`},
	} {
		r, _ := http.NewRequest("POST", "/", strings.NewReader(tc.body))
		var v outer
		err := httpkit.Decode(r, &v)
		if err == nil || err.Message != tc.want {
			t.Errorf("%s: %v, want %q", tc.body, err, tc.want)
		}
	}
}
