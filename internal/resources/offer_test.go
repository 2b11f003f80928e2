package resources_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/resources"
	"github.com/convene/convene/internal/testkit"
)

func TestGetRes(t *testing.T) {
	// Rooms where the configured order and the room type disagree.
	secondaryFirst := []resources.Room{{Moid: "room-s", Type: "secondary"}, {Moid: "room-m", Type: "main"}}
	twoMains := []resources.Room{{Moid: "room-x", Type: "main"}, {Moid: "room-y", Type: "main"}}

	cases := []struct {
		name     string
		rooms    []resources.Room
		nodes    []protocol.HeartbeatNtf
		abnormal []string // rooms PMS reports failed
		req      protocol.GetResReq
		wantRoom string
		wantMCU  []string
		wantVRS  []string
		wantMPS  []string
		wantNack string // in the NO_RESOURCES sentence; "" for an ACK
	}{
		{
			name: "most free capacity wins",
			// room-2 has fewer nodes but more room on them.
			nodes: []protocol.HeartbeatNtf{
				mcu("m4", "room-1", 8, 10), mcu("m1", "room-1", 8, 10), mcu("m2", "room-2", 0, 10),
			},
			wantRoom: "room-2", wantMCU: []string{"m2", "m1", "m4"},
		},
		{
			name:  "a tie goes to the main room",
			rooms: secondaryFirst,
			nodes: []protocol.HeartbeatNtf{mcu("a", "room-s", 5, 10), mcu("b", "room-m", 5, 10)},
			// room-s is configured first, yet room-m is main.
			wantRoom: "room-m", wantMCU: []string{"b", "a"},
		},
		{
			name:  "a tie between main rooms goes to the configured order",
			rooms: twoMains,
			nodes: []protocol.HeartbeatNtf{mcu("a", "room-y", 0, 5), mcu("b", "room-x", 0, 5)},
			// ids alone would put a first.
			wantRoom: "room-x", wantMCU: []string{"b", "a"},
		},
		{
			name:  "the other rooms follow in configured order",
			rooms: []resources.Room{{Moid: "room-a"}, {Moid: "room-b"}, {Moid: "room-c", Type: "secondary"}},
			nodes: []protocol.HeartbeatNtf{
				mcu("z1", "room-a", 0, 5), mcu("a1", "room-b", 0, 5), mcu("c1", "room-c", 0, 50),
			},
			wantRoom: "room-c", wantMCU: []string{"c1", "z1", "a1"},
		},
		{
			name:     "abnormal room is not offered",
			nodes:    []protocol.HeartbeatNtf{mcu("m1", "room-1", 0, 100), mcu("m2", "room-2", 5, 10)},
			abnormal: []string{"room-1"},
			wantRoom: "room-2", wantMCU: []string{"m2"},
		},
		{
			name:     "excluded room is not offered",
			nodes:    []protocol.HeartbeatNtf{mcu("m1", "room-1", 5, 10), mcu("m2", "room-2", 0, 100)},
			req:      protocol.GetResReq{Exclude: []string{"room-2", "room-nowhere"}},
			wantRoom: "room-1", wantMCU: []string{"m1"},
		},
		{
			name: "full nodes are not offered",
			nodes: []protocol.HeartbeatNtf{
				mcu("m1", "room-1", 10, 10), mcu("m2", "room-1", 3, 10), mcu("m3", "room-2", 12, 10),
			},
			wantRoom: "room-1", wantMCU: []string{"m2"},
		},
		{
			name: "recorders only when recording",
			nodes: []protocol.HeartbeatNtf{
				mcu("m1", "room-2", 0, 10), kind(mcu("v1", "room-1", 0, 10), "vrs"),
				kind(mcu("v2", "room-2", 0, 10), "vrs"), kind(mcu("p1", "room-1", 0, 10), "mps"),
			},
			wantRoom: "room-2", wantMCU: []string{"m1"}, wantMPS: []string{"p1"},
		},
		{
			name: "recorders of the preferred room first",
			nodes: []protocol.HeartbeatNtf{
				mcu("m1", "room-2", 0, 10), kind(mcu("v1", "room-1", 0, 10), "vrs"),
				kind(mcu("v2", "room-2", 0, 10), "vrs"), kind(mcu("v3", "room-2", 10, 10), "vrs"),
				kind(mcu("p1", "room-1", 0, 10), "mps"),
			},
			req:      protocol.GetResReq{Recording: true},
			wantRoom: "room-2", wantMCU: []string{"m1"}, wantVRS: []string{"v2", "v1"}, wantMPS: []string{"p1"},
		},
		{
			name:     "no node at all",
			wantNack: "no media node has registered",
		},
		{
			name:     "recorders are not media nodes",
			nodes:    []protocol.HeartbeatNtf{kind(mcu("v1", "room-1", 0, 10), "vrs"), kind(mcu("p1", "room-1", 0, 10), "mps")},
			req:      protocol.GetResReq{Recording: true},
			wantNack: "no media node has registered",
		},
		{
			name:     "every room abnormal or excluded",
			nodes:    []protocol.HeartbeatNtf{mcu("m1", "room-1", 0, 10), mcu("m2", "room-2", 0, 10)},
			abnormal: []string{"room-1"},
			req:      protocol.GetResReq{Exclude: []string{"room-2"}},
			wantNack: "of 2 media nodes 0 are down, 2 are in abnormal or excluded rooms and 0 are full",
		},
		{
			name:     "every node full",
			nodes:    []protocol.HeartbeatNtf{mcu("m1", "room-1", 10, 10), mcu("m2", "room-2", 4, 4)},
			wantNack: "of 2 media nodes 0 are down, 0 are in abnormal or excluded rooms and 2 are full",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := slow
			opts.Rooms = tc.rooms
			h := newHarness(t, opts)
			for _, hb := range tc.nodes {
				h.beat(hb)
			}
			testkit.Eventually(h.t, 15*time.Second, testkit.Cond("every node learned", func() bool { return len(h.svc.Nodes()) == len(tc.nodes) }))
			if len(tc.abnormal) > 0 {
				states := map[string]string{}
				for _, r := range tc.abnormal {
					states[r] = protocol.RoomAbnormal
				}
				h.setRooms(states)
			}
			tc.req.Domain = "tenant"
			ack, err := h.getRes(tc.req)
			if tc.wantNack != "" {
				if nackCode(err) != protocol.ErrNoResources {
					t.Fatalf("GET_RES: %+v, %v; want a NO_RESOURCES NACK", ack, err)
				}
				for _, want := range []string{`no live media node in a normal room of platform "plat-a"`, tc.wantNack} {
					if !strings.Contains(err.Error(), want) {
						t.Fatalf("NACK %q does not say %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("GET_RES: %v", err)
			}
			if ack.Type != protocol.RMSGetResAck || ack.Room != tc.wantRoom {
				t.Errorf("ack %s room %q, want %q", ack.Type, ack.Room, tc.wantRoom)
			}
			for _, l := range []struct {
				name string
				got  []protocol.Server
				want []string
			}{{"mcu", ack.MCU, tc.wantMCU}, {"vrs", ack.VRS, tc.wantVRS}, {"mps", ack.MPS, tc.wantMPS}} {
				if l.got == nil {
					t.Errorf("%s is null, want a list", l.name)
				}
				if ids := serverIDs(l.got); !slices.Equal(ids, l.want) {
					t.Errorf("%s = %v, want %v", l.name, ids, l.want)
				}
			}
		})
	}
}

func serverIDs(ss []protocol.Server) []string {
	var ids []string
	for _, s := range ss {
		ids = append(ids, s.Node)
	}
	return ids
}

func TestGetResServerFields(t *testing.T) {
	h := newHarness(t, slow)
	hb := withPID(mcu("m1", "room-2", 3, 8), "4242")
	h.beat(hb)
	testkit.Eventually(h.t, 15*time.Second, testkit.Cond("m1 learned", func() bool { return h.nodeUp("m1") }))
	ack, err := h.getRes(protocol.GetResReq{Domain: "tenant"})
	if err != nil {
		t.Fatal(err)
	}
	want := protocol.Server{Node: "m1", IP: "ip-m1", PID: "4242", Room: "room-2", Confs: 3, Capacity: 8}
	if len(ack.MCU) != 1 || ack.MCU[0] != want {
		t.Fatalf("mcu = %+v, want [%+v]", ack.MCU, want)
	}
}

func TestGetResBadRequest(t *testing.T) {
	h := newHarness(t, slow)
	m, err := h.bus.Request(t.Context(), protocol.SubjectRMS(platform), map[string]any{"type": protocol.RMSGetResReq, "excluderooms": "room-1"})
	if err != nil {
		t.Fatal(err)
	}
	var nack protocol.Nack
	if err := m.Decode(&nack); err != nil {
		t.Fatal(err)
	}
	if m.Type != protocol.RMSGetResNack || nack.ErrCode != protocol.ErrBadRequest {
		t.Fatalf("reply %s %+v, want GET_RES_NACK BAD_REQUEST", m.Type, nack)
	}
}

// BenchmarkOffer measures the create path's question to RMS with 200
// nodes in four rooms.
func BenchmarkOffer(b *testing.B) {
	rooms := []resources.Room{{Moid: "r0"}, {Moid: "r1"}, {Moid: "r2", Type: "secondary"}, {Moid: "r3", Type: "secondary"}}
	opts := slow
	opts.Rooms = rooms
	h := newHarness(b, opts)
	for i := range 200 {
		h.beat(mcu(fmt.Sprintf("m%03d", i), rooms[i%4].Moid, i%7, 10))
	}
	testkit.Eventually(h.t, 15*time.Second, testkit.Cond("200 nodes", func() bool { return len(h.svc.Nodes()) == 200 }))
	req := protocol.GetResReq{Domain: "tenant", Exclude: []string{"r3"}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.svc.Offer(req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
