package config

import (
	"strings"
	"testing"
)

// One rule for a platform's rooms, whoever is given them: the topology
// file's loader and the services (RMS, PMS) built with rooms directly.
func TestValidateRooms(t *testing.T) {
	for _, tc := range []struct {
		name     string
		platform string
		rooms    []Room
		want     string
	}{
		{"main and secondary", "p1", []Room{{Moid: "r1", Type: RoomMain}, {Moid: "r2", Type: RoomSecondary}}, ""},
		{"no type is main", "p1", []Room{{Moid: "r1"}}, ""},
		{"bad platform moid", "p 1", []Room{{Moid: "r1"}}, `platform moid "p 1"`},
		{"no rooms", "p1", nil, `platform "p1" has no rooms`},
		{"bad room moid", "p1", []Room{{Moid: "r/1"}}, `room moid "r/1"`},
		{"room twice", "p1", []Room{{Moid: "r1"}, {Moid: "r1", Type: RoomSecondary}}, `room "r1" is listed twice`},
		{"unknown type", "p1", []Room{{Moid: "r1", Type: "basement"}}, `type "basement" must be main or secondary`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateRooms(tc.platform, tc.rooms)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if (Room{Type: RoomSecondary}).RoomType() != 1 || (Room{}).RoomType() != 0 {
		t.Fatal("room type numbers: main 0, secondary 1")
	}
}
