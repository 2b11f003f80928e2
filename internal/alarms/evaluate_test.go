package alarms

import (
	"slices"
	"testing"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
)

func set(keys ...Key) map[Key]bool {
	m := map[Key]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}

var (
	n1 = Key{apiclient.AlarmNodeDown, "n1"}
	n2 = Key{apiclient.AlarmNodeDown, "n2"}
	r1 = Key{apiclient.AlarmRoomFailed, "r1"}
	st = Key{apiclient.AlarmStoreUnreachable, "store"}
)

func TestReconcile(t *testing.T) {
	for _, tc := range []struct {
		name         string
		active       map[Key]bool
		causes       []Key
		checked      []string
		kept         []Key
		raise, clear []Key
	}{
		{name: "a new cause is raised", causes: []Key{n1}, checked: []string{n1.Kind}, raise: []Key{n1}},
		{name: "an active cause is not raised again", active: set(n1), causes: []Key{n1}, checked: []string{n1.Kind}},
		{name: "a gone cause of a checked kind clears", active: set(n1, n2), causes: []Key{n2}, checked: []string{n1.Kind}, clear: []Key{n1}},
		{name: "a kind not checked clears nothing", active: set(n1, r1), causes: nil, checked: []string{st.Kind}, clear: nil},
		{name: "a kept alarm does not clear", active: set(n1), checked: []string{n1.Kind}, kept: []Key{n1}},
		{name: "raise and clear at once, sorted", active: set(r1, n2), causes: []Key{st, n1, n2}, checked: []string{n1.Kind, r1.Kind, st.Kind},
			raise: []Key{n1, st}, clear: []Key{r1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newObservation()
			for _, k := range tc.checked {
				o.saw(k)
			}
			for _, k := range tc.causes {
				o.causes[k] = true
			}
			o.keep(tc.kept...)
			active := tc.active
			if active == nil {
				active = map[Key]bool{}
			}
			raise, clear := reconcile(active, o)
			if !slices.Equal(raise, tc.raise) || !slices.Equal(clear, tc.clear) {
				t.Fatalf("raise %v clear %v; want raise %v clear %v", raise, clear, tc.raise, tc.clear)
			}
		})
	}
}

func TestCauses(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []Key
		want []Key
	}{
		{"nodes: only down ones",
			nodeCauses([]protocol.NodeInfo{{Node: "a", State: protocol.NodeUp}, {Node: "b", State: protocol.NodeDown}}),
			[]Key{{apiclient.AlarmNodeDown, "b"}}},
		{"rooms: only abnormal ones",
			roomCauses([]protocol.RoomInfo{{Room: "x", State: protocol.RoomNormal}, {Room: "y", State: protocol.RoomAbnormal}}),
			[]Key{{apiclient.AlarmRoomFailed, "y"}}},
		{"platform: own abnormal, a master unreachable, a backup normal",
			platformCauses(protocol.PlatformStateNtf{Platform: "p", State: protocol.PlatformAbnormal,
				Masters: []protocol.PlatformInfo{{Platform: "m", State: protocol.PlatformNormal, Observed: protocol.PlatformUnreachable}},
				Backups: []protocol.PlatformInfo{{Platform: "b", State: protocol.PlatformNormal}}}),
			[]Key{{apiclient.AlarmPlatformFailed, "p"}, {apiclient.AlarmPlatformFailed, "m"}}},
		{"platform: all normal", platformCauses(protocol.PlatformStateNtf{Platform: "p", State: protocol.PlatformNormal}), nil},
		{"licence: 90% is not above 90%, 91% and 100% are, no limit never",
			licenceCauses("d", license.Usage{
				Limits: license.Limits{"8_720p": 10, "8_1080p": 100, "32_720p": 1, "32_1080p": 0},
				InUse:  license.Limits{"8_720p": 9, "8_1080p": 91, "32_720p": 1, "32_1080p": 5}}, 90),
			[]Key{{apiclient.AlarmLicenceHigh, "d/8_1080p"}, {apiclient.AlarmLicenceHigh, "d/32_720p"}}},
		{"restores: failing often, waiting or being tried again",
			restoreCauses([]protocol.Conference{
				{E164: "1", State: protocol.StatePendingRestore, RestoreAttempts: 3},
				{E164: "2", State: protocol.StateCreating, RestoreAttempts: 4},
				{E164: "3", State: protocol.StatePendingRestore, RestoreAttempts: 2},
				{E164: "4", State: protocol.StateRunning, RestoreAttempts: 9},
			}, 3),
			[]Key{{apiclient.AlarmRestoreFailing, "1"}, {apiclient.AlarmRestoreFailing, "2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slices.SortFunc(tc.got, compareKeys)
			slices.SortFunc(tc.want, compareKeys)
			if !slices.Equal(tc.got, tc.want) {
				t.Fatalf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

func TestHostCauses(t *testing.T) {
	status := func(name string, plugins ...host.PluginStatus) host.HostStatus {
		return host.HostStatus{Host: name, Running: true, Plugins: plugins}
	}
	running := host.PluginStatus{ID: "convene.rms", State: host.StateRunning}
	stopped := host.PluginStatus{ID: "convene.breakout", State: host.StateStopped}
	failed := host.PluginStatus{ID: "convene.pms", State: host.StateFailed}
	plug := func(s string) Key { return Key{apiclient.AlarmPluginStopped, s} }
	down := func(s string) Key { return Key{apiclient.AlarmHostDown, s} }
	for _, tc := range []struct {
		name         string
		known        []string
		statuses     []host.HostStatus
		active       map[Key]bool
		causes, kept []Key
	}{
		{name: "every host reports, every plugin runs", known: []string{"a"}, statuses: []host.HostStatus{status("a", running), status("b", running)}},
		{name: "stopped and failed plugins", statuses: []host.HostStatus{status("a", running, stopped, failed)},
			causes: []Key{plug("a/convene.breakout"), plug("a/convene.pms")}},
		{name: "a known host is silent, its plugin alarm is kept", known: []string{"a", "b"}, statuses: []host.HostStatus{status("a")},
			active: set(plug("b/convene.breakout"), plug("a/convene.breakout")), causes: []Key{down("b")}, kept: []Key{plug("b/convene.breakout")}},
		{name: "a host never seen is not down", statuses: nil},
		{name: "a host that said it stopped is not down, and its plugin alarms clear", known: []string{"a", "b"},
			statuses: []host.HostStatus{status("a"), {Host: "b", Running: false}},
			active:   set(down("b"), plug("b/convene.breakout"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			known := map[string]bool{}
			for _, h := range tc.known {
				known[h] = true
			}
			causes, kept := hostCauses(known, tc.statuses, tc.active)
			for _, l := range [][]Key{causes, kept, tc.causes, tc.kept} {
				slices.SortFunc(l, compareKeys)
			}
			if !slices.Equal(causes, tc.causes) || !slices.Equal(kept, tc.kept) {
				t.Fatalf("causes %v kept %v; want %v and %v", causes, kept, tc.causes, tc.kept)
			}
		})
	}
}

func TestEveryKindHasASeverity(t *testing.T) {
	for _, k := range Kinds() {
		if _, ok := severities[k]; !ok {
			t.Errorf("kind %s has no severity", k)
		}
	}
	if len(severities) != len(Kinds()) {
		t.Errorf("%d severities for %d kinds", len(severities), len(Kinds()))
	}
}
