package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/protocol"
)

const roomSince = int64(1_700_000_000_000)

// fakePMS answers SERVER_ROOM_SET_REQ by applying it to two rooms, and
// SERVER_ROOM_STATE_REQ with them; an unknown room is NACKed.
func (h *harness) fakePMS() *fake {
	rooms := []protocol.RoomInfo{
		{Room: "room-a1", Name: "Main hall", Platform: platform, RoomType: 0, State: protocol.RoomNormal, LiveNodes: 2, SinceMs: roomSince},
		{Room: "room-a2", Name: "Annex", Platform: platform, RoomType: 1, State: protocol.RoomNormal, LiveNodes: 1, SinceMs: roomSince},
	}
	return h.fake(protocol.SubjectPMS(platform), func(m *bus.Msg) any {
		switch m.Type {
		case protocol.ServerRoomStateRq:
			return protocol.ServerRoomStateNtf{Type: protocol.ServerRoomStateNt, Platform: platform, Rooms: rooms}
		case protocol.ServerRoomSetRq:
			var req protocol.ServerRoomSetReq
			_ = m.Decode(&req)
			for i := range rooms {
				if rooms[i].Room != req.Room {
					continue
				}
				rooms[i].State, rooms[i].Reason, rooms[i].Manual = req.State, "", false
				if req.State == protocol.RoomAbnormal {
					rooms[i].Reason, rooms[i].Manual = req.Reason, true
					if req.Reason == "" {
						rooms[i].Reason = "failed by an operator"
					}
				}
				rooms[i].SinceMs = roomSince + 1000
				return protocol.ServerRoomStateNtf{Type: protocol.ServerRoomSetAck, Platform: platform, Rooms: rooms}
			}
			return nack(protocol.ServerRoomSetNack, codes.UnknownRoom, `"`+req.Room+`" is not a server room of platform "plat-a"`)
		}
		return nil
	})
}

func TestFailAndRecoverRoom(t *testing.T) {
	h := newHarness(t)
	f := h.fakePMS()

	status, body := h.do("POST", "/v1/rooms/room-a2/fail", `{"reason": "power maintenance"}`)
	rooms := decodeBody[apiclient.RoomList](t, body).Rooms
	want := []apiclient.Room{
		{Moid: "room-a1", Name: "Main hall", Platform: platform, Type: "main", State: "normal", LiveNodes: 2, Since: time.UnixMilli(roomSince).UTC()},
		{Moid: "room-a2", Name: "Annex", Platform: platform, Type: "secondary", State: "abnormal", LiveNodes: 1,
			Reason: "power maintenance", Manual: true, Since: time.UnixMilli(roomSince + 1000).UTC()},
	}
	if status != http.StatusOK || !equalJSON(t, rooms, want) {
		t.Fatalf("fail: %d %s", status, body)
	}
	if !strings.Contains(string(body), `"since":"2023-11-14T22:13:21Z"`) || !strings.Contains(string(body), `"manual":true`) {
		t.Fatalf("fail: body %s", body)
	}
	var req protocol.ServerRoomSetReq
	f.last(t, &req)
	if req != (protocol.ServerRoomSetReq{Type: protocol.ServerRoomSetRq, Room: "room-a2", State: protocol.RoomAbnormal, Reason: "power maintenance"}) {
		t.Fatalf("PMS got %+v", req)
	}

	for _, body := range []string{"", "{}", " \n"} {
		status, resp := h.do("POST", "/v1/rooms/room-a1/fail", body)
		if status != http.StatusOK {
			t.Fatalf("fail with body %q: %d %s", body, status, resp)
		}
		req = protocol.ServerRoomSetReq{}
		f.last(t, &req)
		if req.Room != "room-a1" || req.State != protocol.RoomAbnormal || req.Reason != "" {
			t.Fatalf("fail with body %q: PMS got %+v", body, req)
		}
	}

	status, body = h.do("POST", "/v1/rooms/room-a2/recover", "")
	rooms = decodeBody[apiclient.RoomList](t, body).Rooms
	if status != http.StatusOK || len(rooms) != 2 || rooms[1].State != "normal" || rooms[1].Reason != "" || rooms[1].Manual {
		t.Fatalf("recover: %d %s", status, body)
	}
	raw := decodeBody[struct{ Rooms []map[string]any }](t, body).Rooms
	if _, shown := raw[1]["reason"]; shown {
		t.Fatalf("recover: an empty reason is shown: %s", body)
	}
	req = protocol.ServerRoomSetReq{}
	f.last(t, &req)
	if req != (protocol.ServerRoomSetReq{Type: protocol.ServerRoomSetRq, Room: "room-a2", State: protocol.RoomNormal}) {
		t.Fatalf("PMS got %+v", req)
	}
}

func TestRoomRouteErrors(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.RequestTimeout = 300 * time.Millisecond })

	status, body := h.do("POST", "/v1/rooms/room-a1/fail", "")
	wantError(t, status, body, 503, codes.PMSUnavailable, "no platform monitor (PMS) answers on monitor.req.plat-a")

	silent := h.fake(protocol.SubjectPMS(platform), func(*bus.Msg) any { return nil })
	status, body = h.do("POST", "/v1/rooms/room-a1/recover", "")
	wantError(t, status, body, 504, codes.PMSTimeout, "the platform monitor (PMS) did not answer on monitor.req.plat-a in time")
	silent.stop(h)

	f := h.fakePMS()
	cases := []struct {
		name, path, body string
		status           int
		code, want       string
	}{
		{"unknown room", "/v1/rooms/room-x/fail", "", 404, codes.UnknownRoom, `"room-x" is not a server room of platform "plat-a"`},
		{"unknown room recovered", "/v1/rooms/room-x/recover", "", 404, codes.UnknownRoom, `"room-x" is not a server room`},
		{"reason not a string", "/v1/rooms/room-a1/fail", `{"reason": 5}`, 400, codes.BadRequest, `field "reason" must be a string`},
		{"unknown field", "/v1/rooms/room-a1/fail", `{"why": "x"}`, 400, codes.BadRequest, `unknown field "why"`},
		{"long reason", "/v1/rooms/room-a1/fail", `{"reason": "` + strings.Repeat("x", 257) + `"}`, 400, codes.BadRequest,
			`field "reason" must be at most 256 bytes, not 257`},
		{"not json", "/v1/rooms/room-a1/fail", `{"reason": `, 400, codes.BadRequest, "body is not valid JSON"},
		{"recover takes no reason", "/v1/rooms/room-a1/recover", `{"reason": "x"}`, 400, codes.BadRequest, `unknown field "reason"`},
		{"bad moid", "/v1/rooms/a.b/fail", "", 400, codes.BadRequest, `room "a.b" in the path must be 1 to 64 letters`},
		{"wrong method", "/v1/rooms/room-a1/fail", "", 405, codes.MethodNotAllowed, "GET is not served on /v1/rooms/room-a1/fail; use POST"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := "POST"
			if c.status == 405 {
				method = "GET"
			}
			before := len(f.received())
			status, body := h.do(method, c.path, c.body)
			wantError(t, status, body, c.status, c.code, c.want)
			if c.status == 400 || c.status == 405 {
				if n := len(f.received()); n != before {
					t.Fatalf("a refused request reached PMS")
				}
			}
		})
	}
}

func TestListRoomsMergesPMS(t *testing.T) {
	h := newHarness(t)
	status, body := h.do("GET", "/v1/rooms", "")
	wantError(t, status, body, 503, codes.RMSUnavailable, "no resource manager (RMS) answers on rms.res.plat-a")

	// PMS alone.
	pmsFake := h.fakePMS()
	if status, body := h.do("POST", "/v1/rooms/room-a2/fail", `{"reason":"flooded"}`); status != 200 {
		t.Fatalf("fail: %d %s", status, body)
	}
	status, body = h.do("GET", "/v1/rooms", "")
	rooms := decodeBody[apiclient.RoomList](t, body).Rooms
	if status != 200 || len(rooms) != 2 || rooms[1].State != "abnormal" || rooms[1].Reason != "flooded" || rooms[1].LiveNodes != 1 {
		t.Fatalf("rooms from PMS alone: %d %s", status, body)
	}

	// RMS and PMS: RMS's rooms and live nodes, PMS's state. RMS has not
	// heard of the failure yet, and knows nothing of room-a3's state.
	h.fake(protocol.SubjectRMS(platform), func(m *bus.Msg) any {
		return protocol.RoomListAck{Type: protocol.RMSRoomListAck, Rooms: []protocol.RoomInfo{
			{Room: "room-a2", Name: "Annex", Platform: platform, RoomType: 1, State: protocol.RoomNormal, LiveNodes: 4},
			{Room: "room-a1", Name: "Main hall", Platform: platform, RoomType: 0, State: protocol.RoomNormal, LiveNodes: 3},
			{Room: "room-a3", Name: "New wing", Platform: platform, RoomType: 1, State: protocol.RoomNormal},
		}}
	})
	status, body = h.do("GET", "/v1/rooms", "")
	rooms = decodeBody[apiclient.RoomList](t, body).Rooms
	want := []apiclient.Room{
		{Moid: "room-a2", Name: "Annex", Platform: platform, Type: "secondary", State: "abnormal", LiveNodes: 4,
			Reason: "flooded", Manual: true, Since: time.UnixMilli(roomSince + 1000).UTC()},
		{Moid: "room-a1", Name: "Main hall", Platform: platform, Type: "main", State: "normal", LiveNodes: 3, Since: time.UnixMilli(roomSince).UTC()},
		{Moid: "room-a3", Name: "New wing", Platform: platform, Type: "secondary", State: "normal"},
	}
	if status != 200 || !equalJSON(t, rooms, want) {
		t.Fatalf("merged rooms: %d %s", status, body)
	}

	// RMS alone again.
	pmsFake.stop(h)
	status, body = h.do("GET", "/v1/rooms", "")
	rooms = decodeBody[apiclient.RoomList](t, body).Rooms
	if status != 200 || len(rooms) != 3 || rooms[0].State != "normal" || rooms[0].Reason != "" || rooms[0].LiveNodes != 4 {
		t.Fatalf("rooms from RMS alone: %d %s", status, body)
	}
}

func TestRoomClient(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.client.FailRoom(ctx, "room-a1", ""); !isAPIError(err, 503, codes.PMSUnavailable) {
		t.Fatalf("FailRoom without PMS: %v", err)
	}
	h.fakePMS()
	rooms, err := h.client.FailRoom(ctx, "room-a1", "cooling failure")
	if err != nil || len(rooms) != 2 || rooms[0].State != "abnormal" || rooms[0].Reason != "cooling failure" || !rooms[0].Manual {
		t.Fatalf("FailRoom: %+v, %v", rooms, err)
	}
	rooms, err = h.client.RecoverRoom(ctx, "room-a1")
	if err != nil || len(rooms) != 2 || rooms[0].State != "normal" || rooms[0].Manual {
		t.Fatalf("RecoverRoom: %+v, %v", rooms, err)
	}
	if _, err := h.client.RecoverRoom(ctx, "room-zz"); !isAPIError(err, 404, codes.UnknownRoom) {
		t.Fatalf("RecoverRoom of an unknown room: %v", err)
	}
}

func isAPIError(err error, status int, code string) bool {
	var ae *apiclient.Error
	return errors.As(err, &ae) && ae.Status == status && ae.Code == code
}
