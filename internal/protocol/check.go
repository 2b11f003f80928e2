package protocol

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The rules for the free text of a booking: conference and template names,
// passwords, invited aliases. Every party that accepts one from a client
// (the REST API, the scheduler for CMs on the bus, the CM agent approving a
// node's rename) checks it with these functions, so the same value is
// never accepted by one and refused by another.

// Limits of free text.
const (
	// MaxNameLen is the longest conference or template name, in characters.
	MaxNameLen = 128
	// MaxPasswordLen is the longest conference password, in bytes of UTF-8:
	// media nodes keep it in a fixed 32-byte field (32 ASCII characters).
	MaxPasswordLen = 32
	// MaxAliasLen is the longest invited alias, in characters.
	MaxAliasLen = 128
	// MaxInvited is the most aliases a conference may invite.
	MaxInvited = 1000
)

// CheckName checks a name given in field: after trimming white space it
// holds 1 to MaxNameLen characters, all printable (see CheckPrintable). Its
// error is a sentence that names the field and says what to change.
func CheckName(field, v string) error {
	t := strings.TrimSpace(v)
	if t == "" {
		return fmt.Errorf("field %q is required: give a name of 1 to %d characters", field, MaxNameLen)
	}
	if n := utf8.RuneCountInString(t); n > MaxNameLen {
		return fmt.Errorf("field %q must be at most %d characters, not %d", field, MaxNameLen, n)
	}
	return CheckPrintable(field, v)
}

// CheckPassword checks a conference password: empty (none), or at most
// MaxPasswordLen bytes of printable text.
func CheckPassword(field, v string) error {
	if n := len(v); n > MaxPasswordLen {
		return fmt.Errorf("field %q must be at most %d bytes (%d ASCII characters), not %d", field, MaxPasswordLen, MaxPasswordLen, n)
	}
	return CheckPrintable(field, v)
}

// CheckInvited checks the aliases a conference invites: at most
// MaxInvited, each 1 to MaxAliasLen printable characters.
func CheckInvited(field string, v []string) error {
	if len(v) > MaxInvited {
		return fmt.Errorf("field %q must list at most %d aliases, not %d", field, MaxInvited, len(v))
	}
	for i, a := range v {
		f := fmt.Sprintf("%s[%d]", field, i)
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("field %q must not be empty", f)
		}
		if n := utf8.RuneCountInString(a); n > MaxAliasLen {
			return fmt.Errorf("field %q must be at most %d characters, not %d", f, MaxAliasLen, n)
		}
		if err := CheckPrintable(f, a); err != nil {
			return err
		}
	}
	return nil
}

// CheckPrintable refuses text that would not show as what it is: invalid
// UTF-8, control characters (tabs, newlines, escapes), format characters
// (bidirectional overrides and isolates U+202A–U+202E and U+2066–U+2069,
// zero-width spaces and joiners, soft hyphens), line and paragraph
// separators, private-use and unassigned code points. Letters, marks,
// digits, punctuation, symbols and spaces (any width) pass.
func CheckPrintable(field, v string) error {
	pos := 0
	for i, r := range v {
		pos++
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(v[i:]); size <= 1 {
				return fmt.Errorf("field %q is not valid UTF-8 at byte %d: send text in UTF-8", field, i)
			}
		}
		if !Printable(r) {
			return fmt.Errorf("field %q holds %U (%s) at character %d: use printable text, without control, formatting or zero-width characters", field, r, describeRune(r), pos)
		}
	}
	return nil
}

// Printable reports whether r may appear in a name: a graphic character
// or a space.
func Printable(r rune) bool {
	return unicode.IsPrint(r) || unicode.Is(unicode.Zs, r)
}

// PrintableText reports whether every character of s is Printable and s
// is valid UTF-8.
func PrintableText(s string) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return false
			}
		}
		if !Printable(r) {
			return false
		}
	}
	return true
}

// describeRune names the kind of a character CheckPrintable refuses.
func describeRune(r rune) string {
	switch {
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C:
		return "a bidirectional control"
	case r == 0x1B:
		return "an escape"
	case r == 0x200B, r == 0x200C, r == 0x200D, r == 0x2060, r == 0xFEFF:
		return "a zero-width character"
	case unicode.IsControl(r):
		return "a control character"
	case unicode.Is(unicode.Cf, r):
		return "a formatting character"
	case unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
		return "a line or paragraph separator"
	case unicode.Is(unicode.Co, r):
		return "a private-use character"
	}
	return "a character that does not print"
}
