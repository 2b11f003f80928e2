package breakout

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/convene/convene/internal/protocol"
)

// goldenStart is the golden scenario's start: users 1 (host), 2 (ums
// 902) and 3 (phone) in the conference, ums 905 in the plan only.
func goldenStart(t *testing.T) (*State, []byte) {
	t.Helper()
	r := rules{now: 1_700_000_000_000, speakerLimit: 16, maxRooms: 200, maxUsers: 5000, maxDelay: 3600}
	st := newState("5100001")
	for _, id := range []Identity{
		{UserID: 1, Role: protocol.RoleHost, Audio: protocol.AudioUnmuted},
		{UserID: 2, UmsID: 902, Audio: protocol.AudioUnmuted, Channel: 77},
		{UserID: 3, Client: protocol.ClientPhone, Audio: protocol.AudioMuted},
	} {
		r.join(st, id, "bms-1/s"+string(rune('0'+id.UserID)))
	}
	out := r.start(st, Actor{UserID: 1, Host: true}, protocol.BreakoutRoomsStart{Extend: "x", RoomInfos: []protocol.BreakoutRoomInfo{
		{RoomID: 10, Name: "Algebra", MixerMode: protocol.MixerServer, UserItems: []protocol.BreakoutRoomUserItem{{UserUmsID: 902}, {UserUmsID: 905}}},
		{RoomID: 20, Name: "Poetry", MixerMode: protocol.MixerClient, UserItems: []protocol.BreakoutRoomUserItem{{UserID: 3}}},
	}})
	if out.status != protocol.BreakoutOK || len(out.notes) != 1 {
		t.Fatalf("start: status %d, %d notes", out.status, len(out.notes))
	}
	full, err := json.Marshal(out.notes[0])
	if err != nil {
		t.Fatal(err)
	}
	return st, full
}

// A compact start carries what a user needs to act: its own entry (its
// preset and current room, its privilege), every room with its mixer
// mode and how many users have it as preset, the server's time and the
// state's version; and none of the other users' entries.
func TestCompactStartCarriesWhatAUserNeeds(t *testing.T) {
	st, fullData := goldenStart(t)
	var full protocol.BreakoutRoomsStartNotify
	if err := json.Unmarshal(fullData, &full); err != nil {
		t.Fatal(err)
	}
	cs, err := newCompactStart(fullData, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint32{1, 2, 3} {
		data := cs.forUser(id)
		var n protocol.BreakoutRoomsStartCompactNotify
		if err := json.Unmarshal(data, &n); err != nil {
			t.Fatalf("user %d: %v: %s", id, err, data)
		}
		if n.Type != protocol.BMSBreakoutRoomsStartNotify || n.StatusCode != 0 || n.Form != protocol.NotifyCompact || n.Version != 4 {
			t.Errorf("user %d: type %s status %d form %q version %d", id, n.Type, n.StatusCode, n.Form, n.Version)
		}
		if n.Timestamp != full.Timestamp || n.Timestamp != 1_700_000_000 || n.ConfID != "5100001" || n.UserID != 1 || n.Extend != "x" {
			t.Errorf("user %d: timestamp %d confID %s userID %d extend %q", id, n.Timestamp, n.ConfID, n.UserID, n.Extend)
		}
		var want protocol.BreakoutRoomUserItem
		for _, u := range st.Users {
			if u.Online() && u.UserID == id {
				want = u.item()
			}
		}
		if n.UserItem == nil || *n.UserItem != want {
			t.Errorf("user %d: own entry %+v, want %+v", id, n.UserItem, want)
		}
		if len(n.Rooms) != len(full.RoomInfos) {
			t.Fatalf("user %d: %d rooms, want %d", id, len(n.Rooms), len(full.RoomInfos))
		}
		for i, ri := range full.RoomInfos {
			got := n.Rooms[i]
			if got.RoomID != ri.RoomID || got.Name != ri.Name || got.MixerMode != ri.MixerMode || got.Extend != ri.Extend ||
				got.UserCount != uint32(len(ri.UserItems)) {
				t.Errorf("user %d: room %d is %+v, want %+v with %d users", id, i, got, ri, len(ri.UserItems))
			}
		}
		if bytes.Contains(data, []byte(`"roomInfos"`)) || bytes.Count(data, []byte(`"userId"`)) != 1 {
			t.Errorf("user %d: the compact start holds other users' entries: %s", id, data)
		}
	}
	// A user the plan does not name gets the rooms, and no entry.
	var n protocol.BreakoutRoomsStartCompactNotify
	if err := json.Unmarshal(cs.forUser(99), &n); err != nil || n.UserItem != nil || len(n.Rooms) != 3 {
		t.Errorf("user 99: %v, entry %+v, %d rooms", err, n.UserItem, len(n.Rooms))
	}
}

// A user id that is also the last one of a user who left: the entry of
// the user in the conference is the one sent, whichever comes first.
func TestCompactStartPicksTheUserInTheConference(t *testing.T) {
	cases := []struct {
		name         string
		leftIn, inIn uint32 // preset rooms of the one who left and of the one in
	}{
		{"the one who left first", MainRoom, 10},
		{"the one in first", 10, MainRoom},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rules{now: 1_700_000_000_000, speakerLimit: 16, maxRooms: 200, maxUsers: 5000, maxDelay: 3600}
			st := newState("5100001")
			r.join(st, Identity{UserID: 1, Role: protocol.RoleHost}, "s1")
			r.join(st, Identity{UserID: 7, UmsID: 907}, "s7a")
			r.leave(st, "s7a")
			r.join(st, Identity{UserID: 7}, "s7b")
			rooms := map[uint32][]protocol.BreakoutRoomUserItem{}
			rooms[tc.leftIn] = append(rooms[tc.leftIn], protocol.BreakoutRoomUserItem{UserID: 7, UserUmsID: 907})
			rooms[tc.inIn] = append(rooms[tc.inIn], protocol.BreakoutRoomUserItem{UserID: 7})
			req := protocol.BreakoutRoomsStart{RoomInfos: []protocol.BreakoutRoomInfo{
				{RoomID: MainRoom, UserItems: rooms[MainRoom]}, {RoomID: 10, UserItems: rooms[10]},
			}}
			out := r.start(st, Actor{UserID: 1, Host: true}, req)
			if out.status != protocol.BreakoutOK {
				t.Fatalf("start: status %d", out.status)
			}
			full, _ := json.Marshal(out.notes[0])
			if bytes.Count(full, []byte(`"userId":7,`)) != 2 {
				t.Fatalf("the plan should name user id 7 twice: %s", full)
			}
			cs, err := newCompactStart(full, 2)
			if err != nil {
				t.Fatal(err)
			}
			var n protocol.BreakoutRoomsStartCompactNotify
			if err := json.Unmarshal(cs.forUser(7), &n); err != nil {
				t.Fatal(err)
			}
			if n.UserItem == nil || n.UserItem.UserUmsID != 0 || n.UserItem.UserCurrentRoomID != MainRoom || n.UserItem.UserPresetRoomID != tc.inIn {
				t.Fatalf("own entry %+v, want the user in the conference (preset %d)", n.UserItem, tc.inIn)
			}
		})
	}
}

// The compact start as it goes on the wire, for each user of the golden
// scenario and one the plan does not name.
func TestGoldenCompactStart(t *testing.T) {
	_, full := goldenStart(t)
	cs, err := newCompactStart(full, 4)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for _, id := range []uint32{1, 2, 3, 99} {
		got.Write(cs.forUser(id))
		got.WriteByte('\n')
	}
	path := filepath.Join("testdata", "compact.golden.jsonl")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGoldenCompactStart -update to write it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("compact starts differ from %s (run with -update if the change is meant):\n%s", path, got.Bytes())
	}
}

func TestNotifyForm(t *testing.T) {
	cases := []struct {
		query   string
		compact bool
		err     bool
	}{
		{"ticket=t", false, false},
		{"ticket=t&notify=full", false, false},
		{"ticket=t&notify=compact", true, false},
		{"ticket=t&notify=Compact", false, true},
		{"ticket=t&notify=", false, false},
		{"ticket=t&notify=tiny", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			compact, err := notifyForm(q)
			if compact != tc.compact || (err != nil) != tc.err {
				t.Fatalf("compact %v, err %v; want compact %v, an error %v", compact, err, tc.compact, tc.err)
			}
			if err != nil && !strings.Contains(err.Error(), "notify=compact") {
				t.Fatalf("the refusal does not say what to send: %v", err)
			}
		})
	}
}

func TestCompactPath(t *testing.T) {
	in := "/v1/conferences/5100001/breakout/ws?ticket=" + url.QueryEscape("a+b/c=")
	out := CompactPath(in)
	u, err := url.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/v1/conferences/5100001/breakout/ws" || u.Query().Get("ticket") != "a+b/c=" || u.Query().Get("notify") != protocol.NotifyCompact {
		t.Fatalf("CompactPath(%q) = %q", in, out)
	}
}

func TestIsStart(t *testing.T) {
	enc := func(v any) []byte { data, _ := json.Marshal(v); return data }
	cases := []struct {
		name string
		data []byte
		want bool
	}{
		{"a start", enc(protocol.BreakoutRoomsStartNotify{Type: protocol.BMSBreakoutRoomsStartNotify}), true},
		{"a refused start", enc(protocol.BreakoutRoomsStartNotify{Type: protocol.BMSBreakoutRoomsStartNotify, StatusCode: protocol.BreakoutAlreadyActive}), false},
		{"a stop", enc(protocol.BreakoutRoomsStopNotify{Type: protocol.BMSBreakoutRoomsStopNotify}), false},
		{"another encoding, sent as it is", []byte(`{"statusCode":0,"type":"BMS_CONF_BREAKOUT_ROOMS_START_NOTIFY"}`), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isStart(tc.data); got != tc.want {
				t.Fatalf("isStart(%s) = %v", tc.data, got)
			}
		})
	}
}
