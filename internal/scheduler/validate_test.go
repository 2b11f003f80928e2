package scheduler

import (
	"strings"
	"testing"

	"github.com/convene/convene/internal/protocol"
)

// A CM on the bus meets the rule the REST API applies to names and
// passwords (protocol.CheckName, protocol.CheckPassword): what one refuses
// the other does too.
func TestValidateCreateNamesAndPasswords(t *testing.T) {
	s := &Scheduler{opts: Options{MaxDurationMinutes: 600}}
	for _, tc := range []struct {
		name, confName, password, want string
	}{
		{"plain", "weekly", "", ""},
		{"trimmed", "  weekly  ", "123456", ""},
		{"32-byte password", "weekly", strings.Repeat("p", 32), ""},
		{"no name", " ", "", `field "confname" is required`},
		{"129 characters", strings.Repeat("名", 129), "", `field "confname" must be at most 128 characters`},
		{"bidi override", "invoice\u202Efdp.exe", "", `field "confname" holds U+202E`},
		{"terminal escape", "\x1b[2Jweekly", "", `field "confname" holds U+001B`},
		{"zero-width space", "week\u200Bly", "", `field "confname" holds U+200B`},
		{"33-byte password", "weekly", strings.Repeat("p", 33), `field "password" must be at most 32 bytes`},
		{"password with a newline", "weekly", "12\n34", `field "password" holds U+000A`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := protocol.CreateConfReq{
				Type: protocol.CMCreateConfReq, Name: tc.confName, Domain: "acme", Scale: 8, Resolution: "720p",
				DurationMinutes: 30, Password: tc.password,
			}
			_, err := s.validateCreate(&req)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if req.Name != strings.TrimSpace(tc.confName) {
					t.Fatalf("name %q, want it trimmed", req.Name)
				}
				return
			}
			if err == nil || Code(err) != protocol.ErrBadRequest || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want BAD_REQUEST with %q", err, tc.want)
			}
			if pErr := protocol.CheckName("confname", tc.confName); pErr == nil {
				if pErr = protocol.CheckPassword("password", tc.password); pErr == nil {
					t.Fatalf("the scheduler refused what protocol accepts: %v", err)
				}
			}
		})
	}
}
