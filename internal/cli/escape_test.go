package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
)

// Names that would act on a terminal rather than show.
const (
	bidiName   = "invoice\u202Efdp.exe"     // shows as "invoiceexe.pdf"
	escapeName = "\x1b]0;owned\x07\x1b[2Jx" // sets the title, clears the screen
	zeroWidth  = "ad\u200Bmin"
	plainName  = "周会 weekly"
)

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{plainName, plainName},
		{"", ""},
		{bidiName, `"invoice\u202efdp.exe"`},
		{escapeName, `"\x1b]0;owned\a\x1b[2Jx"`},
		{zeroWidth, `"ad\u200bmin"`},
		{"tab\there", `"tab\there"`},
	} {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// clean fails the test if out holds a character that does not print
// (other than the newlines and tabs the CLI writes itself).
func clean(t *testing.T, out string) {
	t.Helper()
	for i, r := range out {
		if r == '\n' || r == '\t' {
			continue
		}
		if !protocol.Printable(r) {
			t.Fatalf("output holds %U at byte %d:\n%s", r, i, out)
		}
	}
}

func TestEmitJSONEscapes(t *testing.T) {
	in := apiclient.Conference{E164: "6600001", Name: bidiName, Invited: []string{escapeName, zeroWidth, "\U000E0041", plainName}}
	var out bytes.Buffer
	if err := emitJSON(&out, in); err != nil {
		t.Fatal(err)
	}
	clean(t, out.String())
	if !strings.Contains(out.String(), `invoice\u202efdp.exe`) || !strings.Contains(out.String(), plainName) {
		t.Fatalf("escaped JSON:\n%s", out.String())
	}
	var back apiclient.Conference
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Name != in.Name || strings.Join(back.Invited, "|") != strings.Join(in.Invited, "|") {
		t.Fatalf("round trip: %+v, want %+v", back, in)
	}
}

// fakeAPI answers the conference routes with conferences whose names
// predate the API's rule.
func fakeAPI(t *testing.T) string {
	t.Helper()
	confs := []apiclient.Conference{
		{E164: "6600001", Name: bidiName, State: "running", Node: "n1", Room: "room-a1"},
		{E164: "6600002", Name: escapeName, State: "running", Node: "n\x1b[31m2", Room: zeroWidth},
		{E164: "6600003", Name: plainName, State: "running"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/domains/acme/conferences":
			httpkit.WriteJSON(w, http.StatusOK, map[string]any{"conferences": confs})
		case "/v1/conferences/6600002":
			c := confs[1]
			c.Invited = []string{bidiName}
			c.Reason = "\u2066reason\u2069"
			httpkit.WriteJSON(w, http.StatusOK, c)
		case "/v1/conferences/6600009":
			httpkit.WriteError(w, &codes.Error{Code: codes.NodeRejected, Message: "node said \x1b[2J"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func run(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// The CLI escapes names from the API in tables, in JSON and in errors.
func TestConfPrintsEscaped(t *testing.T) {
	base := fakeAPI(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"list", []string{"list", "--domain", "acme"}, []string{`"invoice\u202efdp.exe"`, `"\x1b]0;owned\a\x1b[2Jx"`, `"ad\u200bmin"`, plainName}},
		{"list as JSON", []string{"list", "--domain", "acme", "--json"}, []string{`invoice\u202efdp.exe`, `\u001b]0;owned\u0007`, plainName}},
		{"show", []string{"show", "6600002"}, []string{`"\x1b]0;owned\a\x1b[2Jx"`, `"n\x1b[31m2`, `"invoice\u202efdp.exe"`, `"running (\u2066reason\u2069)"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, confCmd(), append(tc.args, "--api", base, "--token", "tok")...)
			if err != nil {
				t.Fatal(err)
			}
			clean(t, out)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %s:\n%s", w, out)
				}
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		_, err := run(t, confCmd(), "show", "6600009", "--api", base, "--token", "tok")
		if err == nil {
			t.Fatal("no error")
		}
		clean(t, err.Error())
	})
}

// `convene config example` prints what `convene serve --config` reads:
// the demo topology.
func TestConfigExample(t *testing.T) {
	out, err := run(t, configCmd(), "example")
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Parse([]byte(out))
	if err != nil {
		t.Fatalf("the example does not parse: %v", err)
	}
	a, _ := yaml.Marshal(got)
	b, _ := yaml.Marshal(config.Demo())
	if !bytes.Equal(a, b) {
		t.Fatalf("the example parses as\n%s\nnot the demo\n%s", a, b)
	}
	if !utf8.ValidString(out) || !strings.Contains(out, "role: tenant") || !strings.Contains(out, "# ") {
		t.Fatalf("example:\n%s", out)
	}
	path := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	check, err := run(t, configCmd(), "check", path)
	if err != nil || !strings.Contains(check, "platform plat-a of 1, 1 user domains") {
		t.Fatalf("config check: %v\n%s", err, check)
	}
	if _, err := run(t, configCmd(), "check", filepath.Join(t.TempDir(), "none.yaml")); err == nil {
		t.Fatal("config check of a missing file passed")
	}
}

func TestServeTokenBanner(t *testing.T) {
	const secret = "3f9c0123456789abcdef0123456789ab"
	if got := maskToken(secret); got != "3f9c…" || strings.Contains(got, secret[4:8]) {
		t.Fatalf("maskToken = %q", got)
	}
	c := config.Demo()
	c.API.Tokens = []config.Token{{Name: "board", Token: "readonly-0123456789", Role: config.RoleReadonly}}
	if r := tokenRole(c, secret); r != config.RoleOperator {
		t.Fatalf("a token the configuration does not list: %s", r)
	}
	if r := tokenRole(c, "readonly-0123456789"); r != config.RoleReadonly {
		t.Fatalf("a listed token: %s", r)
	}
	if got := tokenCounts(c); got != "1 (0 operator, 0 tenant, 1 readonly)" {
		t.Fatalf("tokenCounts = %q", got)
	}
}
