package platform_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convene/convene/internal/platform"
	"github.com/convene/convene/internal/protocol"
)

func TestOperatorFailuresSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pms.json")
	opts := quiet
	opts.State = platform.NewFileStore(path)
	h := newHarness(t, opts, true, mcu("m1", "room-1", protocol.NodeUp), mcu("m2", "room-2", protocol.NodeDown))
	h.waitRoom("room-2", protocol.RoomAbnormal, 0) // by itself: not saved
	ack := h.mustSet("room-1", protocol.RoomAbnormal, "flooded")
	since := room(ack.Rooms, "room-1").SinceMs

	if err := h.svc.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.waitBroadcast(0, "room-1", func(r protocol.RoomInfo) bool { return r.Manual })
	heard := len(h.broadcastsSeen())
	h.svc = h.startPMS(opts)
	r := h.room("room-1")
	if r.State != protocol.RoomAbnormal || !r.Manual || r.Reason != "flooded" || r.SinceMs != since || r.LiveNodes != 1 {
		t.Fatalf("room-1 after a restart: %+v", r)
	}
	// The restarted PMS says so in its first broadcast and keeps it when
	// the room's node comes and goes.
	h.waitBroadcast(heard, "room-1", func(r protocol.RoomInfo) bool { return r.State == protocol.RoomAbnormal && r.Manual })
	h.notice(platformMoid, "m1", "room-1", protocol.NodeDown)
	h.notice(platformMoid, "m1", "room-1", protocol.NodeUp)
	h.barrier(1)
	if r := h.room("room-1"); r.State != protocol.RoomAbnormal || !r.Manual {
		t.Fatalf("room-1 = %+v", r)
	}

	h.mustSet("room-1", protocol.RoomNormal, "")
	snap, err := opts.State.Load(context.Background())
	if err != nil || len(snap.Rooms) != 0 {
		t.Fatalf("saved state after the recovery: %+v, %v", snap, err)
	}
}

func TestFileStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fs := platform.NewFileStore(filepath.Join(dir, "pms.json"))
	snap, err := fs.Load(ctx)
	if err != nil || len(snap.Rooms) != 0 {
		t.Fatalf("load of a missing file: %+v, %v", snap, err)
	}
	want := platform.Snapshot{Rooms: []platform.SavedRoom{{Room: "room-1", Reason: "flooded", SinceMs: 42}}}
	if err := fs.Save(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := fs.Load(ctx)
	if err != nil || len(got.Rooms) != 1 || got.Rooms[0] != want.Rooms[0] {
		t.Fatalf("load after save: %+v, %v", got, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the save left %d files", len(entries))
	}

	for name, content := range map[string]string{
		"garbage":       "not json",
		"other version": `{"version": 2, "rooms": []}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pms.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := platform.NewFileStore(path).Load(ctx)
			if !errors.Is(err, platform.ErrBadState) || !strings.Contains(err.Error(), path) {
				t.Fatalf("load of %s: %v", name, err)
			}
			// PMS does not start on a state it cannot read.
			h := newHarness(t, quiet, true)
			opts := quiet
			opts.Platform, opts.Rooms, opts.State = platformMoid, twoRooms, platform.NewFileStore(path)
			svc, err := platform.New(opts, h.connect("pms-2"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.Start(ctx); !errors.Is(err, platform.ErrBadState) {
				t.Fatalf("Start on a bad state file: %v", err)
			}
		})
	}
}
