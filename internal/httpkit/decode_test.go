package httpkit_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
)

func TestDecode(t *testing.T) {
	type body struct {
		Name  string   `json:"name"`
		Count int      `json:"count"`
		Tags  []string `json:"tags"`
	}
	for _, tc := range []struct {
		name, in, words string // words "" for an accepted body
	}{
		{"accepted", `{"name":"a","count":2,"tags":["x"]}`, ""},
		{"empty", ``, "body is empty: send a JSON object"},
		{"not JSON", `{"name":`, "it ends early"},
		{"unknown field", `{"colour":"red"}`, `unknown field "colour"`},
		{"wrong type", `{"count":"2"}`, `field "count" must be a number`},
		{"fraction", `{"count":2.5}`, `field "count" must be a whole number`},
		{"array of numbers", `{"tags":[1]}`, `field "tags" must be an array of strings`},
		{"not an object", `[1]`, "body must be a JSON object, not an array"},
		{"two objects", `{} {}`, "body must hold one JSON object and nothing after it"},
		{"too large", `{"name":"` + strings.Repeat("x", httpkit.MaxBody) + `"}`, "body is larger than 1048576 bytes"},
		{"a long unknown field is cut", `{"` + strings.Repeat(`\u001b`, 300) + `":1}`, `…`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v body
			err := httpkit.Decode(httptest.NewRequest("POST", "/", strings.NewReader(tc.in)), &v)
			if tc.words == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || err.Code != codes.BadRequest || !strings.Contains(err.Message, tc.words) {
				t.Fatalf("Decode = %v, want BAD_REQUEST saying %q", err, tc.words)
			}
			if len(err.Message) > 512 || !utf8.ValidString(err.Message) || strings.ContainsRune(err.Message, 0x1b) {
				t.Fatalf("the message is long or does not print: %q", err.Message)
			}
		})
	}
}

func TestDecodeOptional(t *testing.T) {
	v := struct {
		Reason string `json:"reason"`
	}{Reason: "kept"}
	if err := httpkit.DecodeOptional(httptest.NewRequest("POST", "/", strings.NewReader(" \n")), &v); err != nil || v.Reason != "kept" {
		t.Fatalf("a blank body: %v, %q", err, v.Reason)
	}
	if err := httpkit.DecodeOptional(httptest.NewRequest("POST", "/", strings.NewReader(`{"reason":"r"}`)), &v); err != nil || v.Reason != "r" {
		t.Fatalf("a body: %v, %q", err, v.Reason)
	}
	if err := httpkit.DecodeOptional(httptest.NewRequest("POST", "/", strings.NewReader(`{"why":"r"}`)), &v); err == nil {
		t.Fatal("an unknown field was accepted")
	}
}

func TestParams(t *testing.T) {
	r := httptest.NewRequest("GET", "/?public_only=true&state=yes", nil)
	r.SetPathValue("e164", "66x")
	r.SetPathValue("moid", "a b")
	if _, err := httpkit.PathE164(r); err == nil || err.Message != `e164 "66x" in the path must be 3 to 32 digits` {
		t.Fatalf("PathE164 = %v", err)
	}
	if _, err := httpkit.PathToken(r, "moid", "room"); err == nil || err.Message != `room "a b" in the path must be 1 to 64 letters, digits, '-' or '_'` {
		t.Fatalf("PathToken = %v", err)
	}
	if b, err := httpkit.QueryBool(r, "public_only"); err != nil || !b {
		t.Fatalf("QueryBool = %v, %v", b, err)
	}
	if _, err := httpkit.QueryBool(r, "state"); err == nil || err.Message != `query parameter "state" must be true or false, not "yes"` {
		t.Fatalf("QueryBool = %v", err)
	}
	if got := httpkit.Echo(strings.Repeat("é", 100)); len(got) > 90 || !strings.HasSuffix(got, "…") {
		t.Fatalf("Echo = %q", got)
	}
}
