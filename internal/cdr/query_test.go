package cdr_test

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/cdr"
)

var shanghai = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// now is 2025-03-05 14:20 in Shanghai (06:20 UTC).
var now = time.Date(2025, 3, 5, 14, 20, 0, 0, shanghai)

func TestParseQueryDefaultsAndValues(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name  string
		query string
		want  cdr.Query
	}{
		{"defaults: today in the platform's zone", "",
			cdr.Query{Start: time.Date(2025, 3, 5, 0, 0, 0, 0, shanghai), End: time.Date(2025, 3, 6, 0, 0, 0, 0, shanghai)}},
		{"empty values are absent", "start=&type=&caller=&connected=&page_size=",
			cdr.Query{Start: time.Date(2025, 3, 5, 0, 0, 0, 0, shanghai), End: time.Date(2025, 3, 6, 0, 0, 0, 0, shanghai)}},
		{"every filter", "start=2025-03-01T00:00:00%2B08:00&end=2025-03-02T00:00:00Z&type=video&caller=8001*&called=8002001&connected=true&page_size=1000",
			cdr.Query{Start: time.Date(2025, 3, 1, 0, 0, 0, 0, shanghai), End: time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC), Type: "video",
				Caller: cdr.Number{Value: "8001", Prefix: true}, Called: cdr.Number{Value: "8002001"}, Connected: &yes, PageSize: 1000}},
		{"an offset whose + the URL left unencoded", "start=2025-03-01T00:00:00+08:00",
			cdr.Query{Start: time.Date(2025, 3, 1, 0, 0, 0, 0, shanghai), End: time.Date(2025, 3, 6, 0, 0, 0, 0, shanghai)}},
		{"a lone * matches any number", "caller=*",
			cdr.Query{Start: time.Date(2025, 3, 5, 0, 0, 0, 0, shanghai), End: time.Date(2025, 3, 6, 0, 0, 0, 0, shanghai)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := cdr.ParseQuery(v, now, shanghai)
			if err != nil {
				t.Fatal(err)
			}
			if !q.Start.Equal(tc.want.Start) || !q.End.Equal(tc.want.End) || q.Type != tc.want.Type || q.Caller != tc.want.Caller ||
				q.Called != tc.want.Called || q.PageSize != tc.want.PageSize || (q.Connected == nil) != (tc.want.Connected == nil) ||
				(q.Connected != nil && *q.Connected != *tc.want.Connected) {
				t.Fatalf("got %+v\nwant %+v", q, tc.want)
			}
		})
	}
}

func TestParseQueryRefusals(t *testing.T) {
	for _, tc := range []struct{ query, param string }{
		{"start=yesterday", "start"},
		{"start=2025-03-01", "start"},
		{"end=2025-13-01T00:00:00Z", "end"},
		{"start=1969-12-31T00:00:00Z&end=1970-01-02T00:00:00Z", "start"},
		{"start=2025-03-02T00:00:00Z&end=2025-03-01T00:00:00Z", "end"},
		{"start=2025-03-01T00:00:00Z&end=2025-03-01T00:00:00Z", "end"},
		{"start=2025-04-01T00:00:00Z", "start"}, // after the default end
		{"type=fax", "type"},
		{"type=Voice", "type"},
		{"caller=80*01", "caller"},
		{"called=8001**", "called"},
		{"caller=8001%00", "caller"},
		{"caller=%E2%80%AE1008", "caller"},
		{"called=" + strings.Repeat("9", 129), "called"},
		{"connected=yes", "connected"},
		{"page_size=0", "page_size"},
		{"page_size=1001", "page_size"},
		{"page_size=ten", "page_size"},
		{"page=nonsense", "page"},
		{"page=MS4xLnh5eg", "page"}, // "1.1.xyz": not an id
		{"type=voice&type=video", "type"},
		{"colour=red", "colour"},
		{"start=2025-03-01T00:00:00Z&Start=x", "Start"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			_, err = cdr.ParseQuery(v, now, shanghai)
			var pe *cdr.ParamError
			if !errors.As(err, &pe) || pe.Param != tc.param {
				t.Fatalf("error %v, want one naming %q", err, tc.param)
			}
			if pe.Code() != "BAD_REQUEST" || !strings.Contains(err.Error(), `"`+tc.param+`"`) {
				t.Fatalf("error %q (%s): want BAD_REQUEST naming the parameter", err, pe.Code())
			}
		})
	}
}

// Parameters the caller handles itself are let through when named.
func TestParseQueryAlso(t *testing.T) {
	v := url.Values{"format": {"csv"}}
	if _, err := cdr.ParseQuery(v, now, shanghai); err == nil {
		t.Fatal("an unknown parameter was accepted")
	}
	if _, err := cdr.ParseQuery(v, now, shanghai, "format"); err != nil {
		t.Fatal(err)
	}
}

// Whatever the input, the parser either refuses it naming a parameter of
// the input, or returns a query whose range is not empty, whose page size
// is allowed and whose type is known.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "start=2025-03-01T00:00:00Z&end=2025-03-02T00:00:00Z", "caller=8001*&called=*",
		"type=video&connected=false&page_size=10", "page=MS4xNzQwNzg3MjAwMDAwLjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nw",
		"start=2025-03-01T00:00:00 08:00", "x=1&x=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := cdr.ParseQuery(v, now, shanghai)
		if err != nil {
			var pe *cdr.ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("%q: error %v is not a ParamError", raw, err)
			}
			if _, ok := v[pe.Param]; !ok {
				t.Fatalf("%q: the error names %q, which the input does not hold", raw, pe.Param)
			}
			return
		}
		if !q.End.After(q.Start) || q.PageSize < 0 || q.PageSize > cdr.MaxPageSize || !slices.Contains([]string{"", "voice", "video"}, q.Type) {
			t.Fatalf("%q: accepted as %+v", raw, q)
		}
	})
}
