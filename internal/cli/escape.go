package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/convene/convene/internal/protocol"
)

// What the CLI prints from the API (names, reasons, aliases) may hold
// characters that would act on the terminal rather than show: escapes,
// bidirectional overrides, zero-width characters. Names from the store can
// predate the API's rule or come from elsewhere, so the CLI escapes every
// such text it prints.

// printable is s as it may be printed: unchanged when every character
// shows as what it is (protocol.PrintableText), else Go-quoted, so that
// "a\u202eb" prints as "a\u202eb" and not reversed.
func printable(s string) string {
	if protocol.PrintableText(s) {
		return s
	}
	return strconv.Quote(s)
}

// printRow writes one row of a table, its cells tab-separated and each
// escaped (printable).
func printRow(w io.Writer, cells ...string) {
	for i, c := range cells {
		if i > 0 {
			_, _ = io.WriteString(w, "\t")
		}
		_, _ = io.WriteString(w, printable(c))
	}
	_, _ = io.WriteString(w, "\n")
}

// emitJSON prints v as indented JSON, with every character that does not
// print (protocol.Printable) escaped as \uXXXX. The JSON means the same;
// the terminal shows it as it is.
func emitJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(escapeJSON(buf.Bytes()))
	return err
}

// escapeJSON escapes the non-printing characters of encoded JSON. The
// encoder already escapes control characters inside strings; what is left
// to escape is beyond ASCII, so only strings are touched.
func escapeJSON(data []byte) []byte {
	var out []byte
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, `\ufffd`...) // the encoder never writes invalid UTF-8
		case r < utf8.RuneSelf || protocol.Printable(r):
			out = append(out, data[i:i+size]...)
		case r > 0xFFFF:
			r -= 0x10000
			out = fmt.Appendf(out, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += size
	}
	return out
}
