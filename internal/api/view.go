package api

import (
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
)

// msTime turns Unix milliseconds into a UTC time; 0 is the zero time.
func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func conferenceView(c *protocol.Conference) apiclient.Conference {
	return apiclient.Conference{
		E164: c.E164, Name: c.Name, Domain: c.Domain, State: c.State, Reason: c.Reason,
		Node: c.Node, NodeIP: c.NodeIP, Room: c.Room, Platform: c.Platform, RealPlatform: c.RealPlatform,
		Scale: c.Scale, Resolution: c.Resolution, DurationMinutes: c.DurationMinutes,
		Public: c.Public, Invited: nonNil(c.Invited), Recording: c.Recording,
		HasPassword: c.Password != "", Legacy: c.Legacy,
		CreatedAt: msTime(c.CreateTime), StartedAt: msTime(c.RealStartTime), EndsAt: msTime(c.EndTime),
	}
}

func templateView(t *protocol.Template) apiclient.Template {
	return apiclient.Template{
		E164: t.E164, Name: t.Name, Domain: t.Domain, Platform: t.Platform,
		Scale: t.Scale, Resolution: t.Resolution, DurationMinutes: t.DurationMinutes,
		Public: t.Public, Invited: nonNil(t.Invited), HasPassword: t.Password != "",
		CreatedAt: msTime(t.CreateTime), ModifiedAt: msTime(t.ModifyTime),
	}
}

func licenseView(moid string, u license.Usage) apiclient.License {
	return apiclient.License{Domain: moid, Limits: u.Limits, InUse: u.InUse, Remaining: u.Remaining()}
}

// registryKinds names the registry's entry kinds (000 §7.3).
var registryKinds = map[int]string{
	protocol.EntryInstant:  "conference",
	protocol.EntryReserved: "scheduled",
	protocol.EntryTemplate: "template",
	protocol.EntryVirtual:  "virtual",
}

func registryView(e *protocol.RegistryEntry) apiclient.RegistryEntry {
	kind, ok := registryKinds[e.Kind]
	if !ok {
		kind = "unknown"
	}
	return apiclient.RegistryEntry{
		E164: e.E164, Kind: kind, Name: e.Name, Domain: e.Domain, Platform: e.Platform,
		RealPlatform: e.RealPlatform, Room: e.Room, Node: e.Node, NodeIP: e.NodeIP,
		UpdatedAt: msTime(e.UpdatedMs),
	}
}
