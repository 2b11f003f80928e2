package platform_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/platform"
)

func TestOptions(t *testing.T) {
	h := newHarness(t, quiet, true)
	b := h.connect("options")
	cases := []struct {
		name string
		opts platform.Options
		want string
	}{
		{"bad platform", platform.Options{Platform: "a.b", Rooms: twoRooms}, `platform moid "a.b"`},
		{"no rooms", platform.Options{Platform: "p"}, "has no rooms"},
		{"bad room", platform.Options{Platform: "p", Rooms: []platform.Room{{Moid: "r 1"}}}, `room moid "r 1"`},
		{"twice", platform.Options{Platform: "p", Rooms: []platform.Room{{Moid: "r"}, {Moid: "r"}}}, `room "r" is listed twice`},
		{"bad type", platform.Options{Platform: "p", Rooms: []platform.Room{{Moid: "r", Type: "basement"}}}, `type "basement" must be main or secondary`},
		{"negative interval", platform.Options{Platform: "p", Rooms: twoRooms, BroadcastInterval: -time.Second}, "broadcast interval -1s is negative"},
		{"negative concurrency", platform.Options{Platform: "p", Rooms: twoRooms, Concurrency: -1}, "concurrency -1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := platform.New(c.opts, b, nil)
			if !errors.Is(err, platform.ErrBadOptions) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New = %v; want ErrBadOptions with %q", err, c.want)
			}
		})
	}
	if _, err := platform.New(platform.Options{Platform: "p", Rooms: twoRooms}, nil, nil); !errors.Is(err, platform.ErrBadOptions) {
		t.Fatalf("New without a bus = %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	h := newHarness(t, quiet, true)
	if err := h.svc.Start(context.Background()); !errors.Is(err, platform.ErrStarted) {
		t.Fatalf("second Start = %v", err)
	}
	rooms := h.svc.Rooms()
	if len(rooms) != 2 || rooms[0].Room != "room-1" || rooms[1].Name != "Annex" {
		t.Fatalf("rooms = %+v", rooms)
	}
	if err := h.svc.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.svc.Ready() {
		t.Fatal("ready after Shutdown")
	}
	// Nobody answers on the PMS subject any more.
	_, err := h.set("room-1", "abnormal", "")
	if err == nil {
		t.Fatal("a stopped PMS answered")
	}
	if err := h.svc.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
}
