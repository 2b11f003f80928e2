package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/host"
)

// runSIP runs `convene sip ARGS...` and returns what it printed.
func runSIP(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := sipCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestSIPUsersCommands(t *testing.T) {
	dir := t.TempDir()
	f, err := host.Parse("users.yaml", []byte(fmt.Sprintf(`
host: {name: users, data_dir: %q}
infrastructure:
  records: {plugin: convene.records.sql, url: %q}
servers:
  sip-records: {plugin: convene.sip.records}
`, dir, filepath.Join(dir, "records.db"))))
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(f, host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.Stop(ctx)
	})
	api := httptest.NewServer(h.Handler())
	t.Cleanup(api.Close)
	flags := []string{"--api", api.URL, "--token", "test-token-0123456789"}

	if out, err := runSIP(t, "", append([]string{"users", "add", "1001", "--password", "secret-1001"}, flags...)...); err != nil ||
		!strings.Contains(out, "subscriber 1001@sip.convene.local (version 1)") {
		t.Fatalf("add: %v\n%s", err, out)
	}
	if out, err := runSIP(t, "secret-1002\n", append([]string{"users", "add", "1002", "--password-stdin"}, flags...)...); err != nil ||
		!strings.Contains(out, "subscriber 1002@") {
		t.Fatalf("add from stdin: %v\n%s", err, out)
	}
	if out, err := runSIP(t, "", append([]string{"users", "disable", "1002"}, flags...)...); err != nil || !strings.Contains(out, "1002 disabled") {
		t.Fatalf("disable: %v\n%s", err, out)
	}
	out, err := runSIP(t, "", append([]string{"users", "list"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "1001") || !strings.Contains(lines[1], "enabled") ||
		!strings.Contains(lines[2], "1002") || !strings.Contains(lines[2], "disabled") {
		t.Fatalf("list:\n%s", out)
	}
	if _, err := runSIP(t, "", append([]string{"users", "add", "1003", "--password", "abc"}, flags...)...); err == nil ||
		!strings.Contains(err.Error(), "BAD_REQUEST") || !strings.Contains(err.Error(), "4 to 128 bytes") {
		t.Fatalf("a short password: %v", err)
	}
	if _, err := runSIP(t, "", append([]string{"users", "disable", "9999"}, flags...)...); err == nil || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Fatalf("disable an unknown user: %v", err)
	}
}

// convene sip refuses to run without the platform's bus or store.
func TestSIPNodeNeedsItsPlatform(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--redis", "redis://127.0.0.1:1"}, "no bus"},
		{[]string{"--nats", "none"}, "no store"},
		{[]string{"--nats", "none", "--redis", "redis://127.0.0.1:1", "--sip-listen", "none"}, "runs no node"},
	} {
		t.Setenv("CONVENE_NATS", "")
		if _, err := runSIP(t, "", tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
