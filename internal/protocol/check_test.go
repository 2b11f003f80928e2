package protocol

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name, v, want string // want: "" accepted, else part of the error
	}{
		{"plain", "weekly sync", ""},
		{"chinese with an ideographic space", "周会\u3000第二季度", ""},
		{"accents and emoji with a variation selector", "Café ☕\uFE0F", ""},
		{"surrounding spaces", "  standup  ", ""},
		{"longest", strings.Repeat("名", MaxNameLen), ""},
		{"empty", "", "is required"},
		{"blank", " \u3000 ", "is required"},
		{"too long", strings.Repeat("a", MaxNameLen+1), "at most 128 characters, not 129"},
		{"newline", "a\nb", "U+000A (a control character) at character 2"},
		{"tab", "a\tb", "U+0009 (a control character)"},
		{"terminal escape", "a\x1b[31mred", "U+001B (an escape)"},
		{"delete", "a\x7f", "U+007F (a control character)"},
		{"C1 control", "a\u0085", "U+0085 (a control character)"},
		{"right-to-left override", "invoice\u202Efdp.exe", "U+202E (a bidirectional control) at character 8"},
		{"left-to-right embedding", "\u202Aa", "U+202A (a bidirectional control)"},
		{"first strong isolate", "a\u2068b", "U+2068 (a bidirectional control)"},
		{"pop directional isolate", "a\u2069", "U+2069 (a bidirectional control)"},
		{"right-to-left mark", "a\u200F", "U+200F (a bidirectional control)"},
		{"zero-width space", "ad\u200Bmin", "U+200B (a zero-width character)"},
		{"zero-width joiner", "a\u200Db", "U+200D (a zero-width character)"},
		{"byte order mark", "\uFEFFa", "U+FEFF (a zero-width character)"},
		{"soft hyphen", "a\u00ADb", "U+00AD (a formatting character)"},
		{"line separator", "a\u2028b", "U+2028 (a line or paragraph separator)"},
		{"private use", "a\uE000", "U+E000 (a private-use character)"},
		{"invalid UTF-8", "a\xffb", "not valid UTF-8 at byte 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckName("name", tc.v)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted %q", tc.v)
			case tc.want != "" && (!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `field "name"`)):
				t.Fatalf("error %q, want it to name the field and say %q", err, tc.want)
			}
			if (err == nil) != (PrintableText(tc.v) && strings.TrimSpace(tc.v) != "" && utf8.RuneCountInString(strings.TrimSpace(tc.v)) <= MaxNameLen) {
				t.Fatalf("CheckName and PrintableText disagree on %q", tc.v)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		name, v, want string
	}{
		{"none", "", ""},
		{"digits", "123456", ""},
		{"longest", strings.Repeat("x", MaxPasswordLen), ""},
		{"one byte too long", strings.Repeat("x", MaxPasswordLen+1), "at most 32 bytes (32 ASCII characters), not 33"},
		// 11 characters of 3 bytes each: 33 bytes.
		{"multi-byte over the byte limit", strings.Repeat("密", 11), "not 33"},
		{"64 characters", strings.Repeat("p", 64), "not 64"},
		{"control character", "12\n34", "U+000A"},
		{"bidi override", "12\u202E34", "U+202E"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPassword("password", tc.v)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `field "password"`) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCheckInvited(t *testing.T) {
	many := make([]string, MaxInvited+1)
	for i := range many {
		many[i] = "t"
	}
	for _, tc := range []struct {
		name string
		v    []string
		want string
	}{
		{"none", nil, ""},
		{"two", []string{"6600001", "sip:alice@example.com"}, ""},
		{"most", many[:MaxInvited], ""},
		{"too many", many, "at most 1000 aliases, not 1001"},
		{"empty alias", []string{"a", " "}, `field "invited[1]" must not be empty`},
		{"long alias", []string{strings.Repeat("a", MaxAliasLen+1)}, "at most 128 characters"},
		{"alias with an escape", []string{"a", "b\x1b]0;pwned\x07"}, `field "invited[1]" holds U+001B`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckInvited("invited", tc.v)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// FuzzCheckName: CheckName never panics, and what it accepts is valid,
// printable UTF-8 of at most MaxNameLen characters once trimmed.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"weekly", "周会", "a\u202Eb", "\x1b[2J", "", " ", "\xff", "a\u200Db"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckName("name", s) != nil {
			return
		}
		if !utf8.ValidString(s) || !PrintableText(s) {
			t.Fatalf("accepted %q", s)
		}
		if n := utf8.RuneCountInString(strings.TrimSpace(s)); n == 0 || n > MaxNameLen {
			t.Fatalf("accepted %q of %d characters", s, n)
		}
	})
}
