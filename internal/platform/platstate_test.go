package platform_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/platform"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// TestOperatorPlatformDecisionsSurviveARestart: the switchover of a
// platform and the DR modes set for its masters are kept in the StateStore
// beside the rooms operators failed.
func TestOperatorPlatformDecisionsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	storeA := platform.NewFileStore(filepath.Join(dir, "pms-a.json"))
	storeB := platform.NewFileStore(filepath.Join(dir, "pms-b.json"))
	n := newPlatNet(t, func(a, b *platform.Options) { a.State, b.State = storeA, storeB })
	n.waitMaster("normal", normalA)

	n.setOwn(moidA, protocol.PlatformAbnormal, "flooded")
	before, err := n.a.PlatformConfig("")
	if err != nil {
		t.Fatal(err)
	}
	heardA := len(n.heardOn(moidA))
	n.restart(moidA)
	after, err := n.a.PlatformConfig(moidA)
	if err != nil || after != before || after.State != protocol.PlatformAbnormal || !after.Manual || after.Reason != "flooded" {
		t.Fatalf("A after a restart = %+v, %v; before it %+v", after, err, before)
	}
	n.waitHeard(moidA, heardA, "the restarted A's first broadcast", func(ntf protocol.PlatformStateNtf) bool {
		return ntf.State == protocol.PlatformAbnormal && ntf.Manual && ntf.Reason == "flooded"
	})
	n.waitMaster("abnormal, switched over", func(p protocol.PlatformInfo) bool {
		return p.Observed == protocol.PlatformAbnormal && p.Reason == "switched over by an operator: flooded"
	})

	n.setDR(protocol.DRClosed)
	n.restart(moidB)
	if m := info(n.b.Platforms().Masters, moidA); m.DRMode != protocol.DRClosed || m.State != protocol.PlatformNormal {
		t.Fatalf("B's A after B's restart = %+v", m)
	}
	// Back to what is configured: nothing left to keep.
	n.setDR(protocol.DRAutomatic)
	n.setOwn(moidA, protocol.PlatformNormal, "")
	for name, st := range map[string]*platform.FileStore{moidA: storeA, moidB: storeB} {
		snap, err := st.Load(context.Background())
		if err != nil || snap.Platform != nil || len(snap.DRModes) != 0 || len(snap.Rooms) != 0 {
			t.Fatalf("%s's saved state = %+v, %v", name, snap, err)
		}
	}
}

// TestSavedStateFormat: a state file saved before the platform part reads
// as no switchover and no DR modes; the platform part reads back.
func TestSavedStateFormat(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pms.json")
	old := `{"version": 1, "rooms": [{"roommoid": "room-1", "reason": "flooded", "since": 42}]}`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := platform.NewFileStore(path)
	snap, err := fs.Load(ctx)
	if err != nil || len(snap.Rooms) != 1 || snap.Platform != nil || snap.DRModes != nil {
		t.Fatalf("an older file = %+v, %v", snap, err)
	}
	snap.Platform = &platform.SavedPlatform{State: protocol.PlatformAbnormal, Reason: "drill", SinceMs: 7}
	snap.DRModes = map[string]string{"plat-x": protocol.DRManualOn}
	if err := fs.Save(ctx, snap); err != nil {
		t.Fatal(err)
	}
	got, err := fs.Load(ctx)
	if err != nil || *got.Platform != *snap.Platform || got.DRModes["plat-x"] != protocol.DRManualOn || len(got.Rooms) != 1 {
		t.Fatalf("load after save = %+v, %v", got, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || string(raw["version"]) != "1" || raw["platform"] == nil || raw["drmodes"] == nil {
		t.Fatalf("the file = %s, %v", data, err)
	}
}

// TestSavedModeOfAFormerMaster: a DR mode saved for a platform that is no
// longer a master is dropped; the rest applies.
func TestSavedModeOfAFormerMaster(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pms-b.json")
	st := platform.NewFileStore(path)
	snap := platform.Snapshot{DRModes: map[string]string{moidA: protocol.DRManualOn, "plat-gone": protocol.DRClosed}}
	if err := st.Save(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	n := newPlatNet(t, func(_, b *platform.Options) { b.State = st })
	if m := info(n.b.Platforms().Masters, moidA); m.DRMode != protocol.DRManualOn || m.State != protocol.PlatformAbnormal {
		t.Fatalf("A = %+v", m)
	}
}

func TestPlatformOptions(t *testing.T) {
	e := testkit.BusServer(t, bus.EmbeddedOptions{NoListen: true})
	b, err := bus.Connect(bus.Options{Embedded: e}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	base := func(f func(o *platform.Options)) platform.Options {
		o := platform.Options{Platform: moidB, Rooms: twoRooms, Masters: []platform.PlatformSpec{specA}}
		f(&o)
		return o
	}
	cases := []struct {
		name string
		opts platform.Options
		want string
	}{
		{"self differs", base(func(o *platform.Options) { o.Self = specA }), `Self is platform "plat-a" but Platform is "plat-b"`},
		{"bad master", base(func(o *platform.Options) { o.Masters = []platform.PlatformSpec{{Moid: "a.b"}} }), `master platform moid "a.b"`},
		{"own master", base(func(o *platform.Options) { o.Masters = []platform.PlatformSpec{specB} }), `platform "plat-b" is listed as its own master`},
		{"backup twice", base(func(o *platform.Options) { o.Backups = []platform.PlatformSpec{specA, specA} }), `backup platform "plat-a" is listed twice`},
		{"mode of a stranger", base(func(o *platform.Options) { o.DRModes = map[string]string{"plat-z": protocol.DRClosed} }), `"plat-z", which is not a master platform`},
		{"bad mode", base(func(o *platform.Options) { o.DRModes = map[string]string{moidA: "off"} }), `DR mode "off" of "plat-a"`},
		{"stranger's bus", base(func(o *platform.Options) { o.Peers = map[string]*bus.Bus{"plat-z": b} }), `"plat-z", which is neither a master nor a backup`},
		{"negative poll", base(func(o *platform.Options) { o.PollInterval = -time.Second }), "poll interval -1s is negative"},
		{"negative misses", base(func(o *platform.Options) { o.MissedPolls = -1 }), "missed polls -1 is negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := platform.New(c.opts, b, nil)
			if !errors.Is(err, platform.ErrBadOptions) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New = %v; want ErrBadOptions with %q", err, c.want)
			}
		})
	}
	// Self alone names the platform.
	svc, err := platform.New(platform.Options{Self: specA, Rooms: twoRooms}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := svc.PlatformConfig(moidA); err != nil || cfg.Name != "Beijing" || cfg.State != protocol.PlatformNormal {
		t.Fatalf("PlatformConfig = %+v, %v", cfg, err)
	}
}
