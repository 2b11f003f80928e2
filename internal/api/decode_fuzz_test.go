package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
)

// Fuzz targets for what the API reads from clients: each request body
// (strict JSON decoding, then the body's checks), query parameters and
// path parameters. With their seeds they run as ordinary tests; `go test
// -fuzz=FuzzDecodeCreate ./internal/api` explores further.
//
// What must hold for any input: no panic; a refusal is a 400 BAD_REQUEST
// whose message is short, valid UTF-8 and printable (it may quote the
// input, never paste it raw); an accepted body is valid JSON, and the
// value it decodes to survives a round trip.

// maxMessage bounds the length of a refusal's message in bytes.
const maxMessage = 512

func wantRefusal(t *testing.T, in []byte, e *codes.Error) {
	t.Helper()
	if e.Code != codes.BadRequest || codes.Status(e.Code) != http.StatusBadRequest {
		t.Fatalf("input %.200q: refused with %s, want BAD_REQUEST", in, e.Code)
	}
	if e.Message == "" || len(e.Message) > maxMessage || !utf8.ValidString(e.Message) || !protocol.PrintableText(e.Message) {
		t.Fatalf("input %.200q: message of %d bytes is empty, too long or does not print: %.600q", in, len(e.Message), e.Message)
	}
}

func request(method, target string, body []byte) *http.Request {
	return httptest.NewRequest(method, target, bytes.NewReader(body))
}

// fuzzBody decodes data as a body of type T and runs the body's check.
func fuzzBody[T any](t *testing.T, data []byte, check func(*T) *codes.Error) {
	var v T
	if e := httpkit.Decode(request(http.MethodPost, "/", data), &v); e != nil {
		wantRefusal(t, data, e)
		return
	}
	if !json.Valid(bytes.TrimSpace(data)) {
		t.Fatalf("accepted %q, which is not JSON", data)
	}
	// The decoded value encodes to a body that decodes to the same value.
	enc, err := json.Marshal(&v)
	if err != nil {
		t.Fatalf("%q decoded to %+v, which does not encode: %v", data, v, err)
	}
	var again T
	if e := httpkit.Decode(request(http.MethodPost, "/", enc), &again); e != nil {
		t.Fatalf("%q decoded to %+v; its encoding %s is refused: %s", data, v, enc, e.Message)
	}
	if enc2, _ := json.Marshal(&again); !bytes.Equal(enc, enc2) {
		t.Fatalf("round trip of %q: %s then %s", data, enc, enc2)
	}
	if check == nil {
		return
	}
	if e := check(&v); e != nil {
		wantRefusal(t, data, e)
	}
}

// addSeeds adds each seed body to the corpus.
func addSeeds(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
}

// Bodies that exercise the decoder whatever the type.
var commonSeeds = []string{
	``, ` `, `{}`, `null`, `[]`, `"x"`, `1`, `{"a":1}`, `{} {}`, `{}x`, `{"`, `{"name":`,
	"\xff", `{"name":"\u202e"}`, `{"name":"` + strings.Repeat("x", 300) + `":1}`,
	`{"` + strings.Repeat("k", 1000) + `":1}`,
}

func FuzzDecodeCreate(f *testing.F) {
	addSeeds(f, commonSeeds...)
	addSeeds(f,
		`{"name":"standup","domain":"acme","scale":8,"resolution":"720p","duration_minutes":30}`,
		`{"name":"b","domain":"acme","scale":32,"resolution":"1080p","duration_minutes":60,"e164":"6600001","password":"1234","public":true,"invited":["mt1"],"recording":true}`,
		`{"name":"a\u001bb","domain":"acme","scale":8,"resolution":"720p","duration_minutes":30}`,
		`{"name":"x","domain":"a.b","scale":8.5,"resolution":720,"duration_minutes":"60"}`,
		`{"invited":[1,2],"public":"yes"}`,
		`{"password":"`+strings.Repeat("p", 33)+`"}`,
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzBody(t, data, func(q *apiclient.CreateConferenceRequest) *codes.Error {
			e := checkCreate(q, 7*24*60)
			if e == nil {
				// What the API accepts, the scheduler accepts.
				if protocol.CheckName("confname", q.Name) != nil || protocol.CheckPassword("password", q.Password) != nil {
					t.Fatalf("the API accepted %+v, which the scheduler refuses", q)
				}
			}
			return e
		})
	})
}

func FuzzDecodeUpdate(f *testing.F) {
	addSeeds(f, commonSeeds...)
	addSeeds(f, `{"name":"renamed"}`, `{"password":""}`, `{"name":null,"password":null}`, `{"name":"a\u2066b","password":"x"}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzBody(t, data, checkUpdate)
	})
}

func FuzzDecodeDelay(f *testing.F) {
	addSeeds(f, commonSeeds...)
	addSeeds(f, `{"minutes":15}`, `{"minutes":-1}`, `{"minutes":1e3}`, `{"minutes":99999999999999999999}`, `{"minutes":"5"}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzBody(t, data, func(q *apiclient.DelayRequest) *codes.Error { return checkMinutes("minutes", q.Minutes, 600) })
	})
}

func FuzzDecodeMonitor(f *testing.F) {
	addSeeds(f, commonSeeds...)
	addSeeds(f, `{"ip":"`+strings.Repeat("h", 2000)+`","port":1}`, `{"ip":"10.0.0.9","port":5000}`, `{"ip":"::1","port":65535}`, `{"ip":"host","port":0}`, `{"ip":"10.0.0.1","port":70000}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzBody(t, data, checkMonitor)
	})
}

func FuzzDecodeLicense(f *testing.F) {
	addSeeds(f, commonSeeds...)
	addSeeds(f, `{"limits":{"`+strings.Repeat("\u202e", 300)+`":1}}`, `{"limits":{"8_720p":10}}`, `{"limits":{"9_720p":1}}`, `{"limits":{"8_720p":-1}}`, `{"limits":{"8_720p":"x"}}`, `{"limits":null}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzBody(t, data, checkLicense)
	})
}

func FuzzDecodeTemplate(f *testing.F) {
	addSeeds(f, commonSeeds...)
	addSeeds(f,
		`{"name":"t","domain":"acme","scale":8,"resolution":"720p","duration_minutes":30}`,
		`{"name":"t","domain":"acme","scale":8,"resolution":"720p","duration_minutes":30,"e164":"6600001","public":true,"invited":["a"],"password":"1"}`,
		`{"name":"t","recording":true}`,
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzBody(t, data, func(q *apiclient.TemplateRequest) *codes.Error { return checkTemplate(q, 7*24*60) })
	})
}

func FuzzDecodeDRMode(f *testing.F) {
	addSeeds(f, commonSeeds...)
	addSeeds(f, `{"mode":"`+strings.Repeat("\u0007", 500)+`"}`, `{"mode":"closed"}`, `{"mode":"manual-on"}`, `{"mode":1}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzBody[apiclient.DRModeRequest](t, data, nil)
	})
}

// FuzzDecodeOptional: the bodies of room and platform failure, which may
// be left out.
func FuzzDecodeOptional(f *testing.F) {
	addSeeds(f, commonSeeds...)
	addSeeds(f, `{"reason":"power maintenance"}`, "\n\t ", `{"reason":1}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		var q apiclient.FailRoomRequest
		if e := httpkit.DecodeOptional(request(http.MethodPost, "/", data), &q); e != nil {
			wantRefusal(t, data, e)
			return
		}
		if len(bytes.TrimSpace(data)) > 0 && !json.Valid(bytes.TrimSpace(data)) {
			t.Fatalf("accepted %q, which is not JSON", data)
		}
	})
}

// FuzzQuery: the query parameters of the lists.
func FuzzQuery(f *testing.F) {
	for _, q := range []string{
		"", "public_only=true&terminal=mt1&state=running", "public_only=maybe", "state=ended",
		"terminal=%20", "terminal=%1b%5b2J", "e164=6600001&limit=5", "limit=0", "limit=99999999999999999999",
		"e164=abc", "%zz", "state=" + strings.Repeat("%1b", 600), "public_only=" + strings.Repeat("x", 900), "a=1&a=2&state=creating&state=running", "limit=-1", "limit=+5", "limit=0x10",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := request(http.MethodGet, "/", nil)
		r.URL.RawQuery = raw
		in := []byte(raw)
		if f, state, e := listQuery(r); e != nil {
			wantRefusal(t, in, e)
		} else {
			if checkState(state) != nil {
				t.Fatalf("%q: accepted state %q", raw, state)
			}
			if n := utf8.RuneCountInString(f.Terminal); n > maxAliasLen {
				t.Fatalf("%q: accepted a terminal of %d characters", raw, n)
			}
		}
		if e164, limit, e := eventQuery(r); e != nil {
			wantRefusal(t, in, e)
		} else if limit < 1 || limit > eventRingSize || (e164 != "" && !protocol.ValidE164(e164)) {
			t.Fatalf("%q: accepted e164 %q, limit %d", raw, e164, limit)
		}
		if _, e := httpkit.QueryBool(r, "public_only"); e != nil {
			wantRefusal(t, in, e)
		}
	})
}

// FuzzPath: the path parameters.
func FuzzPath(f *testing.F) {
	for _, v := range []string{strings.Repeat("\u2066", 400), strings.Repeat("9", 40), "6600001", "66x", "", "10.0.0.9:5000", "[::1]:80", "host:1", "10.0.0.1:0", "10.0.0.1:99999", "acme", "a.b", "\x1b"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		r := request(http.MethodGet, "/", nil)
		for _, name := range []string{"e164", "moid", "addr"} {
			r.SetPathValue(name, v)
		}
		in := []byte(v)
		if e164, e := httpkit.PathE164(r); e != nil {
			wantRefusal(t, in, e)
		} else if !protocol.ValidE164(e164) {
			t.Fatalf("accepted e164 %q", e164)
		}
		for _, what := range []string{"domain", "room", "platform"} {
			if moid, e := httpkit.PathToken(r, "moid", what); e != nil {
				wantRefusal(t, in, e)
			} else if !protocol.ValidToken(moid) {
				t.Fatalf("accepted moid %q", moid)
			}
		}
		if ip, port, e := pathAddr(r); e != nil {
			wantRefusal(t, in, e)
		} else if port < 1 || port > 65535 || ip == "" {
			t.Fatalf("accepted monitor address %q as %s %d", v, ip, port)
		}
	})
}
