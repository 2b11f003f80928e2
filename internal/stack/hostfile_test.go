package stack

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
)

// The topology the stack's services read back from its host file is the
// configuration it was given, every field of it.
func TestHostFileCarriesTheTopology(t *testing.T) {
	full := &config.Config{
		Platform: "pb",
		Platforms: []config.Platform{
			{Moid: "pa", Name: "A", NumberSegment: "51", E164Digits: 6, Backups: []string{"pb"}, Store: "redis://127.0.0.1:1", Bus: "nats://127.0.0.1:2",
				Rooms: []config.Room{{Moid: "a1", Name: "one", Type: "main"}, {Moid: "a2", Type: "secondary"}}},
			{Moid: "pb", NumberSegment: "52", Rooms: []config.Room{{Moid: "b1"}}},
		},
		Domains: []config.Domain{{Moid: "t", Platform: "pa", EnableH265: true, EnableHDMeeting: true, Disabled: true,
			License: license.Limits{"8_720p": 3}}},
		API: config.API{Listen: "127.0.0.1:9", Tokens: []config.Token{
			{Name: "ops", Token: "0123456789abcdef0"},
			{Name: "tenant", Token: "0123456789abcdef1", Role: config.RoleTenant, Domains: []string{"t"}},
		}},
		Scheduler: config.Scheduler{LeaseTTL: 1234 * time.Millisecond, LeaseRenew: 100 * time.Millisecond, MaxDurationMinutes: 77},
		RMS:       config.RMS{HeartbeatInterval: 50 * time.Millisecond, MissedHeartbeats: 3, OverloadHold: time.Second},
	}
	full.Defaults()
	for name, cfg := range map[string]*config.Config{"demo": config.Demo(), "full": full} {
		f, err := hostFile(Options{Config: cfg, SimNodes: 2, Schedulers: 2}, "tok-0123456789abcdef", "sim")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := config.FromTopology(f.Topology.File, f.Topology.Node)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Compared as JSON: a list left out and an empty one are the same.
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(cfg)
		if norm(g) != norm(w) {
			t.Errorf("%s: the topology read back differs:\n got %s\nwant %s", name, g, w)
		}
	}
}

func norm(b []byte) string { return strings.ReplaceAll(string(b), "[]", "null") }
