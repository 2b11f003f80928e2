package config

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	c, err := Parse([]byte(`
platforms:
  - moid: p1
    number_segment: "51"
    rooms:
      - {moid: r1}
      - {moid: r2, type: secondary}
domains:
  - moid: acme
    license: {8_720p: 3}
api:
  tokens: [{name: ops, token: 0123456789abcdef}]
rms:
  heartbeat_interval: 250ms
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Platform != "p1" || c.Domains[0].Platform != "p1" || c.Local().E164Digits != 5 {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if r := c.RMS; r.HeartbeatInterval != 250*time.Millisecond || r.MissedHeartbeats != 4 ||
		r.DisconnectGrace != 250*time.Millisecond || r.OverloadLag != 125*time.Millisecond || r.OverloadHold != 5*time.Second {
		t.Fatalf("rms = %+v, want the defaults that follow a 250ms interval", c.RMS)
	}
	if c.Local().Rooms[1].RoomType() != 1 || c.Local().Rooms[0].RoomType() != 0 {
		t.Fatal("room types")
	}
}

func TestParseRejects(t *testing.T) {
	base := "platforms:\n  - moid: p1\n    rooms: [{moid: r1}]\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", base + "bogus: 1\n", "field bogus not found"},
		{"no platforms", "domains: []\n", "no platforms"},
		{"bad licence class", base + "domains: [{moid: d, license: {9_720p: 1}}]\n", "scale 9"},
		{"unknown platform of domain", base + "domains: [{moid: d, platform: px}]\n", `platform "px" is not listed`},
		{"short token", base + "api: {tokens: [{name: a, token: x}]}\n", "shorter than 16"},
		{"bad room type", "platforms:\n  - moid: p1\n    rooms: [{moid: r1, type: basement}]\n", "main or secondary"},
		{"moid with a dot", "platforms:\n  - moid: p.1\n    rooms: [{moid: r1}]\n", "letters, digits"},
		{"wrong type", base + "rms: {missed_heartbeats: many}\n", "cannot unmarshal"},
		{"negative overload lag", base + "rms: {overload_lag: -1s}\n", "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestDemoIsValid(t *testing.T) {
	c := Demo()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Local().Rooms) != 2 || len(c.Domains) != 1 || c.Domains[0].License["8_720p"] == 0 {
		t.Fatalf("demo = %+v", c)
	}
}

func TestTokenRoles(t *testing.T) {
	base := "platforms:\n  - moid: p1\n    rooms: [{moid: r1}]\ndomains: [{moid: acme}, {moid: beta}]\n"
	t.Run("role defaults to operator", func(t *testing.T) {
		c, err := Parse([]byte(base + "api: {tokens: [{name: ops, token: 0123456789abcdef}]}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if c.API.Tokens[0].Role != RoleOperator {
			t.Fatalf("role %q, want operator", c.API.Tokens[0].Role)
		}
	})
	t.Run("each role", func(t *testing.T) {
		c, err := Parse([]byte(base + `api:
  tokens:
    - {name: ops, token: 0123456789abcdef, role: operator}
    - {name: portal, token: 0123456789abcdeg, role: tenant, domains: [acme, beta]}
    - {name: board, token: 0123456789abcdeh, role: readonly}
`))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.API.Tokens[1]; got.Role != RoleTenant || len(got.Domains) != 2 {
			t.Fatalf("tenant token = %+v", got)
		}
	})
	for _, tt := range []struct{ name, tokens, want string }{
		{"unknown role", "[{name: a, token: 0123456789abcdef, role: admin}]", `role "admin" must be operator, tenant or readonly`},
		{"tenant without domains", "[{name: a, token: 0123456789abcdef, role: tenant}]", "a tenant token lists the user domains"},
		{"tenant of an unknown domain", "[{name: a, token: 0123456789abcdef, role: tenant, domains: [acme, gamma]}]", `domain "gamma" is not listed`},
		{"operator with domains", "[{name: a, token: 0123456789abcdef, domains: [acme]}]", "only tenant tokens list domains"},
		{"readonly with domains", "[{name: a, token: 0123456789abcdef, role: readonly, domains: [acme]}]", "only tenant tokens list domains"},
		{"one secret twice", "[{name: a, token: 0123456789abcdef}, {name: b, token: 0123456789abcdef, role: readonly}]", `"a" and "b" are the same token`},
		{"no name", "[{token: 0123456789abcdef}]", "give it a name"},
		{"name with an escape", "[{name: \"a\\e[2J\", token: 0123456789abcdef}]", "give it a name of printable text"},
		{"the example's placeholder", "[{name: a, token: " + ExampleTokenSecret + "}]", "still has the example's placeholder"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(base + "api: {tokens: " + tt.tokens + "}\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
