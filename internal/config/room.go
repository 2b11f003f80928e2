package config

import (
	"fmt"

	"github.com/convene/convene/internal/protocol"
)

// Room types, as the topology file spells them.
const (
	RoomMain      = "main"
	RoomSecondary = "secondary"
)

// Room is a server room of a platform: the one topology type of a room,
// read from the topology file and handed as it is to the services that
// serve the platform (RMS, PMS, the media nodes).
type Room struct {
	Moid string `yaml:"moid"`
	Name string `yaml:"name"`
	// Type is RoomMain or RoomSecondary; empty is main.
	Type string `yaml:"type"`
}

// RoomType is the seed's number for the room type: 0 main, 1 secondary.
func (r Room) RoomType() int {
	if r.Type == RoomSecondary {
		return 1
	}
	return 0
}

// ValidateRooms checks a platform's moid and its rooms: at least one, each
// with a valid moid listed once and a known type. Loading a topology checks
// every platform with it, and a service given its platform and rooms
// directly (RMS, PMS) checks them with it too: one rule.
func ValidateRooms(platform string, rooms []Room) error {
	if !protocol.ValidToken(platform) {
		return fmt.Errorf("platform moid %q: use 1-64 letters, digits, '-' or '_'", platform)
	}
	if len(rooms) == 0 {
		return fmt.Errorf("platform %q has no rooms: list at least one", platform)
	}
	seen := make(map[string]bool, len(rooms))
	for _, r := range rooms {
		if !protocol.ValidToken(r.Moid) {
			return fmt.Errorf("platform %q: room moid %q: use 1-64 letters, digits, '-' or '_'", platform, r.Moid)
		}
		if seen[r.Moid] {
			return fmt.Errorf("room %q is listed twice", r.Moid)
		}
		seen[r.Moid] = true
		if r.Type != "" && r.Type != RoomMain && r.Type != RoomSecondary {
			return fmt.Errorf("room %q: type %q must be main or secondary", r.Moid, r.Type)
		}
	}
	return nil
}
