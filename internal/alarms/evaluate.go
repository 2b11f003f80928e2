package alarms

import (
	"cmp"
	"slices"
	"strings"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
)

// observation is what one evaluation saw: the causes present now, and the
// kinds whose checks answered. Only a kind that was checked clears: a
// check that could not look (RMS silent, the store down) leaves its
// alarms as they are. Kept are active alarms a check could not judge this
// time (the plugins of a host gone silent): neither raised nor cleared.
type observation struct {
	causes  map[Key]bool
	checked map[string]bool
	kept    map[Key]bool
}

func newObservation() observation {
	return observation{causes: map[Key]bool{}, checked: map[string]bool{}, kept: map[Key]bool{}}
}

// saw records that the check of kind answered, with the causes it found.
func (o observation) saw(kind string, causes ...Key) {
	o.checked[kind] = true
	for _, k := range causes {
		o.causes[k] = true
	}
}

// keep records active alarms that stay as they are.
func (o observation) keep(keys ...Key) {
	for _, k := range keys {
		o.kept[k] = true
	}
}

// reconcile compares the active alarms with what a pass saw: the causes
// with no active alarm are to be raised, the active alarms of a checked
// kind whose cause is gone to be cleared; both sorted.
func reconcile(active map[Key]bool, o observation) (raise, clear []Key) {
	for k := range o.causes {
		if !active[k] {
			raise = append(raise, k)
		}
	}
	for k := range active {
		if o.checked[k.Kind] && !o.causes[k] && !o.kept[k] {
			clear = append(clear, k)
		}
	}
	slices.SortFunc(raise, compareKeys)
	slices.SortFunc(clear, compareKeys)
	return raise, clear
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Subject, b.Subject))
}

// nodeCauses are the media nodes RMS holds down.
func nodeCauses(nodes []protocol.NodeInfo) []Key {
	var out []Key
	for _, n := range nodes {
		if n.State == protocol.NodeDown {
			out = append(out, Key{apiclient.AlarmNodeDown, n.Node})
		}
	}
	return out
}

// roomCauses are the server rooms the monitor holds abnormal.
func roomCauses(rooms []protocol.RoomInfo) []Key {
	var out []Key
	for _, r := range rooms {
		if r.State == protocol.RoomAbnormal {
			out = append(out, Key{apiclient.AlarmRoomFailed, r.Room})
		}
	}
	return out
}

// platformCauses are the platforms the monitor's answer says failed: its
// own when abnormal, and each master or backup it sees abnormal or
// cannot reach (whatever the disaster-recovery mode makes of it).
func platformCauses(n protocol.PlatformStateNtf) []Key {
	var out []Key
	if n.State == protocol.PlatformAbnormal {
		out = append(out, Key{apiclient.AlarmPlatformFailed, n.Platform})
	}
	for _, p := range slices.Concat(n.Masters, n.Backups) {
		observed := cmp.Or(p.Observed, p.State)
		if observed == protocol.PlatformAbnormal || observed == protocol.PlatformUnreachable {
			out = append(out, Key{apiclient.AlarmPlatformFailed, p.Platform})
		}
	}
	return out
}

// licenceCauses are the licence classes of a domain used above percent
// of their limit: subject <domain>/<class>.
func licenceCauses(domain string, u license.Usage, percent int) []Key {
	var out []Key
	for _, c := range license.All() {
		limit, used := u.Limits[c.String()], u.InUse[c.String()]
		if limit > 0 && used*100 > limit*percent {
			out = append(out, Key{apiclient.AlarmLicenceHigh, domain + "/" + c.String()})
		}
	}
	return out
}

// restoreCauses are the conferences whose restore failed at least
// attempts times and that still wait for one or are being tried again.
func restoreCauses(confs []protocol.Conference, attempts int) []Key {
	var out []Key
	for _, c := range confs {
		waiting := c.State == protocol.StatePendingRestore || c.State == protocol.StateCreating
		if waiting && c.RestoreAttempts >= attempts {
			out = append(out, Key{apiclient.AlarmRestoreFailing, c.E164})
		}
	}
	return out
}

// hostCauses judges the hosts from their latest statuses: a host known
// (seen before, or alarmed already) that no longer reports is down,
// unless its last status said it stopped (a planned stop: its alarms
// clear); a plugin stopped or failed on a host that reports is stopped
// (subject <host>/<plugin>). The plugin alarms of a host that went
// silent stay as they are (kept): nobody can tell.
func hostCauses(known map[string]bool, statuses []host.HostStatus, active map[Key]bool) (causes, kept []Key) {
	present, left := map[string]bool{}, map[string]bool{}
	for _, st := range statuses {
		if !st.Running {
			left[st.Host] = true
			continue
		}
		present[st.Host] = true
		for _, p := range st.Plugins {
			if p.State == host.StateStopped || p.State == host.StateFailed {
				causes = append(causes, Key{apiclient.AlarmPluginStopped, st.Host + "/" + p.ID})
			}
		}
	}
	for h := range known {
		if !present[h] && !left[h] {
			causes = append(causes, Key{apiclient.AlarmHostDown, h})
		}
	}
	for k := range active {
		if k.Kind != apiclient.AlarmPluginStopped {
			continue
		}
		if h, _, ok := strings.Cut(k.Subject, "/"); ok && !present[h] && !left[h] {
			kept = append(kept, k)
		}
	}
	return causes, kept
}
