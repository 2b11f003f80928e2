package cdr

import (
	"encoding/base64"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
)

// Page sizes.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// maxNumberLen bounds a caller or called filter, in bytes.
const maxNumberLen = 128

// Query selects call records by their start time, type, caller, called
// and connected state; the same filters drive statistics and export.
// Build it with ParseQuery (from a URL's parameters) or by hand.
type Query struct {
	Start, End time.Time // records that started in [Start, End)
	Type       string    // Voice, Video, or "" for both
	Caller     Number
	Called     Number
	Connected  *bool // nil for both
	PageSize   int   // 1 to MaxPageSize; 0 is DefaultPageSize
	// Page continues a listing where the previous page's Next left it;
	// "" starts at the newest record.
	Page string
}

// Number matches a caller or called number exactly, or by prefix (the
// parameter's form "8001*"). The zero value, or an empty prefix, matches
// any.
type Number struct {
	Value  string
	Prefix bool
}

func (n Number) String() string {
	if n.Prefix {
		return n.Value + "*"
	}
	return n.Value
}

func (n Number) match() records.Match { return records.Match{Value: n.Value, Prefix: n.Prefix} }

// any reports whether n matches every number.
func (n Number) any() bool { return n.Value == "" }

// QueryParams are the parameters ParseQuery reads.
var QueryParams = []string{"start", "end", "type", "caller", "called", "connected", "page", "page_size"}

// ParseQuery reads a query from URL parameters: start and end (RFC 3339;
// by default today 00:00 and tomorrow 00:00 in loc, now being now),
// type (voice or video), caller and called (a number, or a prefix ending
// in "*"), connected (true or false), page (a previous answer's next)
// and page_size (1 to 1000, default 100). Empty values are absent ones.
// A parameter named in also is accepted and left to the caller; any
// other is refused. Errors are *ParamError, naming the parameter.
func ParseQuery(v url.Values, now time.Time, loc *time.Location, also ...string) (Query, error) {
	for _, name := range slices.Sorted(maps.Keys(v)) {
		vals := v[name]
		if !slices.Contains(QueryParams, name) && !slices.Contains(also, name) {
			return Query{}, paramErr(name, "is not a parameter of this query: use %s", strings.Join(QueryParams, ", "))
		}
		if len(vals) > 1 {
			return Query{}, paramErr(name, "is given %d times: give it once", len(vals))
		}
	}
	var (
		q   Query
		err error
	)
	today := dayStart(now, loc)
	if q.Start, err = parseTime(v, "start", today); err != nil {
		return Query{}, err
	}
	if q.End, err = parseTime(v, "end", nextDay(today, loc)); err != nil {
		return Query{}, err
	}
	if !q.End.After(q.Start) {
		name := "end"
		if v.Get("end") == "" {
			name = "start"
		}
		return Query{}, paramErr(name, "the range is empty: end (%s) must be after start (%s)",
			q.End.In(loc).Format(time.RFC3339), q.Start.In(loc).Format(time.RFC3339))
	}
	switch t := v.Get("type"); t {
	case "", Voice, Video:
		q.Type = t
	default:
		return Query{}, paramErr("type", "%.40q is not a call type: use voice or video", t)
	}
	if q.Caller, err = parseNumber(v, "caller"); err != nil {
		return Query{}, err
	}
	if q.Called, err = parseNumber(v, "called"); err != nil {
		return Query{}, err
	}
	switch c := v.Get("connected"); c {
	case "":
	case "true", "false":
		b := c == "true"
		q.Connected = &b
	default:
		return Query{}, paramErr("connected", "%.40q: use true or false", c)
	}
	if s := v.Get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageSize {
			return Query{}, paramErr("page_size", "%.40q: use a whole number from 1 to %d", s, MaxPageSize)
		}
		q.PageSize = n
	}
	if q.Page = v.Get("page"); q.Page != "" {
		if _, err := decodeCursor(q.Page); err != nil {
			return Query{}, err
		}
	}
	return q, nil
}

// ParseQuery reads a query in the service's time zone and clock; see
// the function ParseQuery.
func (s *Service) ParseQuery(v url.Values, also ...string) (Query, error) {
	return ParseQuery(v, s.opts.Now(), s.loc, also...)
}

// parseTime reads an RFC 3339 time. A URL that did not encode the + of
// an offset delivers a space: it is read as the +.
func parseTime(v url.Values, name string, def time.Time) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && len(s) > 6 && s[len(s)-6] == ' ' {
		t, err = time.Parse(time.RFC3339Nano, s[:len(s)-6]+"+"+s[len(s)-5:])
	}
	if err != nil {
		return time.Time{}, paramErr(name, "%.64q is not an RFC 3339 time: use the form 2025-03-01T00:00:00+08:00 (in a URL, the + as %%2B)", s)
	}
	if t.Year() < 1970 {
		return time.Time{}, paramErr(name, "%s is before 1970: use a time from 1970 on", s)
	}
	return t, nil
}

// parseNumber reads a caller or called filter: printable text, with at
// most one "*", at its end.
func parseNumber(v url.Values, name string) (Number, error) {
	s := v.Get(name)
	switch {
	case s == "":
		return Number{}, nil
	case len(s) > maxNumberLen:
		return Number{}, paramErr(name, "is %d bytes long: use at most %d", len(s), maxNumberLen)
	case !utf8.ValidString(s) || !protocol.PrintableText(s):
		return Number{}, paramErr(name, "%.40q holds characters that are not printable text: use a number such as 8001001, or a prefix such as 8001*", s)
	}
	n := Number{Value: s}
	if rest, ok := strings.CutSuffix(s, "*"); ok {
		n = Number{Value: rest, Prefix: rest != ""} // "*" alone: any number
	}
	if strings.Contains(n.Value, "*") {
		return Number{}, paramErr(name, "%.40q: \"*\" may only end a prefix (8001* matches the numbers that start with 8001)", s)
	}
	return n, nil
}

// cursorVersion starts every cursor, so that a later form can be told
// apart.
const cursorVersion = "1"

// encodeCursor is the opaque position after the call c in the order
// newest first.
func encodeCursor(c records.CallCursor) string {
	raw := cursorVersion + "." + strconv.FormatInt(c.Start.UnixMilli(), 10) + "." + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(s string) (records.CallCursor, error) {
	bad := paramErr("page", "is not a page this service gave: pass the \"next\" of the previous answer as it came, or leave page out to start from the newest")
	if len(s) > 128 {
		return records.CallCursor{}, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return records.CallCursor{}, bad
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] != cursorVersion || !validID(parts[2]) {
		return records.CallCursor{}, bad
	}
	ms, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || ms < 0 || ms > 1<<50 {
		return records.CallCursor{}, bad
	}
	return records.CallCursor{Start: time.UnixMilli(ms).UTC(), ID: parts[2]}, nil
}
