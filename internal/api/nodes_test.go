package api

import (
	"net/http"
	"testing"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/protocol"
)

func TestNodesAndRooms(t *testing.T) {
	h := newHarness(t)
	status, body := h.do("GET", "/v1/nodes", "")
	wantError(t, status, body, 503, codes.RMSUnavailable, "no resource manager (RMS) answers on rms.res.plat-a")

	h.conference(protocol.Conference{}, "n1")
	h.conference(protocol.Conference{}, "n1")
	h.conference(protocol.Conference{}, "n2")
	h.fake(protocol.SubjectRMS(platform), func(m *bus.Msg) any {
		switch m.Type {
		case protocol.RMSNodeListReq:
			return protocol.NodeListAck{Type: protocol.RMSNodeListAck, Nodes: []protocol.NodeInfo{
				{Node: "n2", IP: "10.0.0.2", PID: "8", Room: "room-a2", Kind: "mcu", State: protocol.NodeDown, Capacity: 50, Confs: 0},
				{Node: "n1", IP: "10.0.0.1", PID: "7", Room: "room-a1", Kind: "mcu", State: protocol.NodeUp, Capacity: 100, Confs: 3, Legacy: true},
			}}
		case protocol.RMSRoomListReq:
			return protocol.RoomListAck{Type: protocol.RMSRoomListAck, Rooms: []protocol.RoomInfo{
				{Room: "room-a1", Name: "Main hall", Platform: platform, RoomType: 0, State: protocol.RoomNormal, LiveNodes: 1},
				{Room: "room-a2", Name: "Annex", Platform: platform, RoomType: 1, State: protocol.RoomAbnormal},
			}}
		}
		return nil
	})
	status, body = h.do("GET", "/v1/nodes", "")
	nodes := decodeBody[apiclient.NodeList](t, body).Nodes
	want := []apiclient.Node{
		{ID: "n1", IP: "10.0.0.1", PID: "7", Room: "room-a1", Kind: "mcu", State: "up", Capacity: 100, Conferences: 2, Reported: 3, Legacy: true},
		{ID: "n2", IP: "10.0.0.2", PID: "8", Room: "room-a2", Kind: "mcu", State: "down", Capacity: 50, Conferences: 1, Reported: 0},
	}
	if status != http.StatusOK || !equalJSON(t, nodes, want) {
		t.Fatalf("nodes: %d %s", status, body)
	}
	status, body = h.do("GET", "/v1/rooms", "")
	rooms := decodeBody[apiclient.RoomList](t, body).Rooms
	if status != http.StatusOK || len(rooms) != 2 || rooms[0].Type != "main" || rooms[1].Type != "secondary" ||
		rooms[1].State != "abnormal" || rooms[0].LiveNodes != 1 || rooms[0].Name != "Main hall" {
		t.Fatalf("rooms: %d %s", status, body)
	}
}

func TestPlatforms(t *testing.T) {
	h := newHarness(t)
	status, body := h.do("GET", "/v1/platforms", "")
	ps := decodeBody[apiclient.PlatformList](t, body).Platforms
	if status != 200 || len(ps) != 1 {
		t.Fatalf("%d %s", status, body)
	}
	p := ps[0]
	if p.Moid != "plat-a" || !p.Local || p.State != "normal" || p.NumberSegment != "66" || len(p.Rooms) != 2 ||
		p.Rooms[1] != (apiclient.PlatformRoom{Moid: "room-a2", Name: "Annex", Type: "secondary"}) || p.Backups == nil {
		t.Fatalf("platform = %+v", p)
	}
}

func TestRegistry(t *testing.T) {
	h := newHarness(t)
	h.fake(protocol.SubjectRegistry(platform), func(m *bus.Msg) any {
		var q protocol.RegistryQuery
		_ = m.Decode(&q)
		switch q.E164 {
		case "6600001":
			return protocol.RegistryQueryAck{Type: protocol.UPUQueryAck, Entry: protocol.RegistryEntry{
				E164: q.E164, Kind: protocol.EntryInstant, Name: "weekly", Domain: "acme", Platform: "plat-a",
				RealPlatform: "plat-b", Room: "room-b1", Node: "n9", NodeIP: "10.9.0.1", UpdatedMs: 1_700_000_000_000,
			}}
		case "6600002":
			return nack(protocol.UPUQueryNack, codes.NotFound, "")
		}
		return nack(protocol.UPUQueryNack, codes.NotFound, "6600003 is not registered on plat-a")
	})
	status, body := h.do("GET", "/v1/registry/6600001", "")
	got := decodeBody[apiclient.RegistryEntry](t, body)
	if status != 200 || got.Kind != "conference" || got.RealPlatform != "plat-b" || got.NodeIP != "10.9.0.1" ||
		got.UpdatedAt.UnixMilli() != 1_700_000_000_000 {
		t.Fatalf("%d %s", status, body)
	}
	status, body = h.do("GET", "/v1/registry/6600002", "")
	wantError(t, status, body, 404, codes.NotFound, "no conference, template or virtual room is registered under 6600002")
	status, body = h.do("GET", "/v1/registry/6600003", "")
	wantError(t, status, body, 404, codes.NotFound, "6600003 is not registered on plat-a")
}
