package httpkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/convene/convene/internal/codes"
)

// MaxBody is the largest request body Decode reads.
const MaxBody = 1 << 20

// Decode reads the request body strictly into v (a pointer to a struct):
// one JSON object, no unknown fields, at most MaxBody bytes. Its error is a
// 400 BAD_REQUEST naming the field at fault, quoting at most a bounded
// part of what the client sent (Echo).
func Decode(r *http.Request, v any) *codes.Error {
	body := &countingReader{r: io.LimitReader(r.Body, MaxBody+1)}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if body.n > MaxBody {
		return BadRequest("body is larger than %d bytes", MaxBody)
	}
	if err != nil {
		return decodeError(err, v, body.n)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if body.n > MaxBody {
			return BadRequest("body is larger than %d bytes", MaxBody)
		}
		return BadRequest("body must hold one JSON object and nothing after it (offset %d)", dec.InputOffset())
	}
	return nil
}

func decodeError(err error, v any, read int64) *codes.Error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return BadRequest("body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("body is not valid JSON: it ends early at offset %d", read)
	case errors.As(err, &syntax):
		return BadRequest("body is not valid JSON: %s at offset %d", syntax.Error(), syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return BadRequest("body must be a JSON object, not %s", article(typ.Value))
		}
		return BadRequest("field %s must be %s", Echo(typ.Field), expected(v, typ))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unquoted, err := strconv.Unquote(name); err == nil {
			name = Echo(unquoted)
		}
		return BadRequest("unknown field %s", name)
	}
	return BadRequest("body is not valid JSON: %s", err.Error())
}

// expected says what a field should hold, from the Go type of the field
// named by the error's path in v.
func expected(v any, e *json.UnmarshalTypeError) string {
	t := reflect.TypeOf(v)
	for _, name := range strings.Split(e.Field, ".") {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			break
		}
		f, ok := fieldByJSONName(t, name)
		if !ok {
			return "of another type"
		}
		t = f.Type
	}
	return describe(t, e.Value)
}

func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// describe names a Go type the way a JSON user thinks of it; got is what
// the decoder found ("string", "number 3.5", ...).
func describe(t reflect.Type, got string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if strings.HasPrefix(got, "number") {
			return "a whole number"
		}
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array of " + plural(t.Elem(), got)
	case reflect.Map:
		return "an object whose values are " + plural(t.Elem(), got)
	}
	return "an object"
}

func plural(t reflect.Type, got string) string {
	d := describe(t, got)
	switch d {
	case "a string":
		return "strings"
	case "a number":
		return "numbers"
	case "a whole number":
		return "whole numbers"
	}
	return d
}

func article(v string) string {
	switch v {
	case "array", "object":
		return "an " + v
	}
	return v
}

// maxEcho is the most bytes of a client's value, quoted, that an error
// message repeats.
const maxEcho = 80

// Echo quotes a value from the client for an error message: escaped (Go
// syntax), and cut with "…" when long, so that a message stays short and
// prints as it is whatever the client sent.
func Echo(s string) string {
	q := strconv.Quote(s)
	if len(q) <= maxEcho {
		return q
	}
	cut := 0
	for i := range s {
		if len(strconv.Quote(s[:i])) > maxEcho {
			break
		}
		cut = i
	}
	return strconv.Quote(s[:cut]) + "…"
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// DecodeOptional is Decode for a body that may be left out: no body, or
// only white space, leaves v as it is.
func DecodeOptional(r *http.Request, v any) *codes.Error {
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return BadRequest("reading the body failed: %s", err.Error())
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	return Decode(r, v)
}
