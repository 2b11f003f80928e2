package resources_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/resources"
	"github.com/convene/convene/internal/testkit"
)

func TestNewChecksOptions(t *testing.T) {
	emb := testkit.BusServer(t, bus.EmbeddedOptions{NoListen: true})
	b := testkit.Dial(t, bus.Options{Embedded: emb})

	good := resources.Options{Platform: platform, Rooms: twoRooms}
	cases := []struct {
		name string
		edit func(o *resources.Options)
		ok   bool
	}{
		{"defaults", func(*resources.Options) {}, true},
		{"bad platform", func(o *resources.Options) { o.Platform = "plat.a" }, false},
		{"no rooms", func(o *resources.Options) { o.Rooms = nil }, false},
		{"bad room moid", func(o *resources.Options) { o.Rooms = []resources.Room{{Moid: "a b"}} }, false},
		{"room twice", func(o *resources.Options) { o.Rooms = []resources.Room{{Moid: "r"}, {Moid: "r"}} }, false},
		{"bad room type", func(o *resources.Options) { o.Rooms = []resources.Room{{Moid: "r", Type: "basement"}} }, false},
		{"negative interval", func(o *resources.Options) { o.HeartbeatInterval = -time.Second }, false},
		{"negative missed", func(o *resources.Options) { o.MissedHeartbeats = -1 }, false},
		{"negative overload lag", func(o *resources.Options) { o.OverloadLag = -time.Millisecond }, false},
		{"negative overload hold", func(o *resources.Options) { o.OverloadHold = -time.Second }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := good
			tc.edit(&opts)
			_, err := resources.New(opts, b, nil)
			if tc.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tc.ok && !errors.Is(err, resources.ErrBadOptions) {
				t.Fatalf("New = %v, want ErrBadOptions", err)
			}
		})
	}
	if _, err := resources.New(good, nil, nil); !errors.Is(err, resources.ErrBadOptions) {
		t.Fatalf("New without a bus = %v, want ErrBadOptions", err)
	}
}

func TestDefaultsReachNodes(t *testing.T) {
	h := newHarness(t, resources.Options{})
	ack, err := h.register(reg(mcu("m1", "room-1", 0, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if ack.HeartbeatIntervalMs != 200 || ack.ConfListIntervalMs != 5000 {
		t.Fatalf("ack = %+v, want the default 200 ms and 5000 ms", ack)
	}
}

func TestLifecycle(t *testing.T) {
	h := newHarness(t, slow)
	if err := h.svc.Start(context.Background()); !errors.Is(err, resources.ErrStarted) {
		t.Fatalf("second Start = %v, want ErrStarted", err)
	}
	if err := h.svc.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.svc.Ready() {
		t.Fatal("ready after Shutdown")
	}
	// Nobody answers on the RMS subject any more.
	if _, err := h.getRes(protocol.GetResReq{Domain: "d"}); !errors.Is(err, bus.ErrNoResponders) {
		t.Fatalf("GET_RES after Shutdown = %v, want no responders", err)
	}
	if err := h.svc.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestUnknownRequestType(t *testing.T) {
	h := newHarness(t, slow)
	err := h.bus.Call(context.Background(), protocol.SubjectRMS(platform), protocol.Header{Type: "RMS_DANCE_REQ"}, nil)
	if nackCode(err) != protocol.ErrBadRequest {
		t.Fatalf("unknown request = %v, want BAD_REQUEST", err)
	}
}
