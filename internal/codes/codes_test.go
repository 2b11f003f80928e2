package codes_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/convene/convene/internal/codes"
)

// The codes and statuses clients rely on. Written as literals, so that a
// constant whose string or a code whose status changes fails here.
var want = map[string]int{
	"BAD_REQUEST": 400, "UNAUTHORIZED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404,
	"METHOD_NOT_ALLOWED": 405, "INTERNAL": 500,

	"CONF_NOT_FOUND": 404, "CONF_NOT_RUNNING": 409, "DOMAIN_NOT_FOUND": 404, "DOMAIN_DISABLED": 403,
	"LICENSE_EXHAUSTED": 409, "E164_IN_USE": 409, "E164_EXHAUSTED": 409, "E164_OUT_OF_SEGMENT": 400,
	"DURATION_LIMIT": 409, "MONITOR_NOT_FOUND": 404, "TEMPLATE_NOT_FOUND": 404, "RENAME_REJECTED": 409,
	"BOOKING_NOT_FOUND": 404,

	"NO_RESOURCES": 503, "PLATFORM_NOT_SERVED": 503, "UNKNOWN_PLATFORM": 404, "UNKNOWN_ROOM": 404,
	"NODE_REJECTED": 502, "NODE_TIMEOUT": 504, "NODE_FULL": 503, "RMS_ERROR": 502,

	"SCHEDULER_UNAVAILABLE": 503, "SCHEDULER_TIMEOUT": 504, "RMS_UNAVAILABLE": 503, "RMS_TIMEOUT": 504,
	"REGISTRY_UNAVAILABLE": 503, "REGISTRY_TIMEOUT": 504, "PMS_UNAVAILABLE": 503, "PMS_TIMEOUT": 504,

	"STORE_ERROR": 500, "STORE_UNREACHABLE": 503, "STORE_LOCKED": 503, "STORE_CORRUPT": 500, "STORE_PERSIST": 500,
	"RECORDS_UNAVAILABLE": 503,

	"BREAKOUT_UNAVAILABLE": 503, "BREAKOUT_NOT_HOST": 403, "BREAKOUT_NOT_ACTIVE": 409,
	"BREAKOUT_ALREADY_ACTIVE": 409, "BREAKOUT_COUNTDOWN": 409, "BREAKOUT_NOT_ALLOWED": 403,
	"BREAKOUT_BUSY": 503, "UNKNOWN_USER": 404, "USER_NOT_IN_CONFERENCE": 409,
	"PHONE_MAIN_ROOM_ONLY": 409, "SPEAKER_LIMIT": 409,
	"TICKET_EXPIRED": 401, "TICKET_USED": 401, "TICKET_STALE": 401,

	"PLUGIN_STOPPED": 503, "PLUGIN_FAILED": 500, "UNKNOWN_PLUGIN": 404, "HOST_NOT_RUNNING": 503, "HOST_CONFIG": 400,
}

func TestStatuses(t *testing.T) {
	all := codes.All()
	if len(all) != len(want) {
		t.Errorf("the book has %d codes, the test knows %d: add the new code and its status to want", len(all), len(want))
	}
	for _, e := range all {
		status, ok := want[e.Code]
		switch {
		case !ok:
			t.Errorf("%s is in the book but not in want", e.Code)
		case e.Status != status || codes.Status(e.Code) != status:
			t.Errorf("%s answers %d, clients expect %d", e.Code, codes.Status(e.Code), status)
		}
	}
	for code := range want {
		if _, ok := codes.Lookup(code); !ok {
			t.Errorf("%s is missing from the book", code)
		}
	}
	if s := codes.Status("NO_SUCH_CODE"); s != 500 {
		t.Errorf("an unknown code answers %d, want 500", s)
	}
}

var upperSnake = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$`)

func TestEntries(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range codes.All() {
		if seen[e.Code] {
			t.Errorf("%s is in the book twice", e.Code)
		}
		seen[e.Code] = true
		if !upperSnake.MatchString(e.Code) {
			t.Errorf("%q is not UPPER_SNAKE", e.Code)
		}
		if e.Meaning == "" || strings.ContainsAny(e.Meaning, "\n\t") || len(e.Meaning) > 120 {
			t.Errorf("%s: the meaning must be one short line: %q", e.Code, e.Meaning)
		}
		if e.Status < 400 || e.Status > 599 {
			t.Errorf("%s: status %d is not an error status", e.Code, e.Status)
		}
	}
}

// Every code constant of the package is in the book, and every entry of
// the book is a constant: a code declared without its status fails here.
func TestEveryConstantInTheBook(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "codes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Fatalf("constant %s is not a string literal", name.Name)
				}
				v, _ := strconv.Unquote(lit.Value)
				if other, dup := consts[v]; dup {
					t.Errorf("%s and %s are both %q", other, name.Name, v)
				}
				consts[v] = name.Name
			}
		}
	}
	for v, name := range consts {
		if _, ok := codes.Lookup(v); !ok {
			t.Errorf("constant %s (%q) has no entry in the book", name, v)
		}
	}
	for _, e := range codes.All() {
		if _, ok := consts[e.Code]; !ok {
			t.Errorf("entry %s has no constant", e.Code)
		}
	}
}

func TestError(t *testing.T) {
	cause := errors.New("disk full")
	e := &codes.Error{Code: codes.StoreError, Message: "the state store failed", Err: cause}
	wrapped := fmt.Errorf("writing: %w", e)
	if codes.Of(wrapped) != codes.StoreError || !errors.Is(wrapped, cause) {
		t.Fatalf("Of = %s, Is(cause) = %v", codes.Of(wrapped), errors.Is(wrapped, cause))
	}
	if codes.Of(cause) != codes.Internal {
		t.Fatalf("an uncoded error has code %s", codes.Of(cause))
	}
	if got := codes.Errorf(codes.ConfNotFound, "conference %s does not exist", "6600001"); got.Error() != "CONF_NOT_FOUND: conference 6600001 does not exist" || got.Status() != 404 {
		t.Fatalf("Errorf = %q (%d)", got.Error(), got.Status())
	}
	// The envelope carries the code and the sentence, never the cause.
	data, err := json.Marshal(codes.Envelope{Error: *e})
	if err != nil || string(data) != `{"error":{"code":"STORE_ERROR","message":"the state store failed"}}` {
		t.Fatalf("envelope = %s, %v", data, err)
	}
}
