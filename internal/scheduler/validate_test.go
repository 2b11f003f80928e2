package scheduler

import (
	"context"
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

// The REST API checks a conference's and a template's free text with
// protocol.CheckName, CheckPassword and CheckInvited (api/validate.go); the
// scheduler checks what CMs send it over the bus. At every boundary both
// give the same verdict, for conferences and for templates alike.
func TestValidateAgreesWithTheAPIAtTheBoundaries(t *testing.T) {
	s := &Scheduler{opts: Options{MaxDurationMinutes: 600}}
	aliases := func(n int, a string) []string {
		v := make([]string, n)
		for i := range v {
			v[i] = a
		}
		return v
	}
	for _, tc := range []struct {
		name     string
		confName string
		password string
		invited  []string
		accept   bool
	}{
		{"128-character name", strings.Repeat("名", 128), "", nil, true},
		{"129-character name", strings.Repeat("名", 129), "", nil, false},
		{"blank name", "  ", "", nil, false},
		{"name with a control character", "week\x07ly", "", nil, false},
		{"name with a zero-width space", "week\u200Bly", "", nil, false},
		{"32-byte password", "weekly", strings.Repeat("p", 32), nil, true},
		{"33-byte password", "weekly", strings.Repeat("p", 33), nil, false},
		{"64-character password", "weekly", strings.Repeat("p", 64), nil, false},
		{"11 three-byte characters in a password", "weekly", strings.Repeat("密", 11), nil, false},
		{"password with a newline", "weekly", "12\n34", nil, false},
		{"1000 invited", "weekly", "", aliases(1000, "1001"), true},
		{"1001 invited", "weekly", "", aliases(1001, "1001"), false},
		{"128-character alias", "weekly", "", []string{strings.Repeat("a", 128)}, true},
		{"129-character alias", "weekly", "", []string{strings.Repeat("a", 129)}, false},
		{"blank alias", "weekly", "", []string{"1001", " "}, false},
		{"alias with a bidi override", "weekly", "", []string{"evil\u202Etxt"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := protocol.CheckName("name", tc.confName) == nil &&
				protocol.CheckPassword("password", tc.password) == nil &&
				protocol.CheckInvited("invited", tc.invited) == nil
			if api != tc.accept {
				t.Fatalf("the API's rule accepts = %v, want %v", api, tc.accept)
			}
			req := protocol.CreateConfReq{
				Type: protocol.CMCreateConfReq, Name: tc.confName, Domain: "acme", Scale: 8, Resolution: "720p",
				DurationMinutes: 30, Password: tc.password, Invited: tc.invited,
			}
			_, err := s.validateCreate(&req)
			if (err == nil) != tc.accept {
				t.Fatalf("conference: scheduler err = %v, the API accepts = %v", err, tc.accept)
			}
			tpl := protocol.Template{
				Name: tc.confName, Domain: "acme", Scale: 8, Resolution: "720p",
				DurationMinutes: 30, Password: tc.password, Invited: tc.invited,
			}
			err = s.validateTemplate(&tpl)
			if (err == nil) != tc.accept {
				t.Fatalf("template: scheduler err = %v, the API accepts = %v", err, tc.accept)
			}
			if err != nil && Code(err) != protocol.ErrBadRequest {
				t.Fatalf("template: code %s, want %s", Code(err), protocol.ErrBadRequest)
			}
			// A rename and a new password of a running conference: what
			// the API refuses is refused before the conference is looked
			// up; what it accepts passes the same check.
			if protocol.CheckName("name", tc.confName) != nil {
				if err := s.Rename(context.Background(), "1234", tc.confName); Code(err) != protocol.ErrBadRequest {
					t.Fatalf("rename: err = %v, want %s", err, protocol.ErrBadRequest)
				}
			} else if name := tc.confName; checkText("confname", &name, "", nil) != nil {
				t.Fatal("rename: the scheduler refuses a name the API accepts")
			}
			if protocol.CheckPassword("password", tc.password) != nil {
				if err := s.SetPassword(context.Background(), "1234", tc.password); Code(err) != protocol.ErrBadRequest {
					t.Fatalf("new password: err = %v, want %s", err, protocol.ErrBadRequest)
				}
			} else if checkText("", nil, tc.password, nil) != nil {
				t.Fatal("new password: the scheduler refuses a password the API accepts")
			}
		})
	}
}
