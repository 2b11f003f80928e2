package breakout

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/convene/convene/internal/protocol"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// The protocol's messages as they go on the wire: a start, a move, the
// rooms' end, and the four messages to the node, for a small conference.
func TestGoldenMessages(t *testing.T) {
	r := rules{now: 1_700_000_000_000, speakerLimit: 16, maxRooms: 200, maxUsers: 5000, maxDelay: 3600}
	st := newState("5100001")
	for _, id := range []Identity{
		{UserID: 1, Role: protocol.RoleHost, Audio: protocol.AudioUnmuted},
		{UserID: 2, UmsID: 902, Audio: protocol.AudioUnmuted, Channel: 77},
		{UserID: 3, Client: protocol.ClientPhone, Audio: protocol.AudioMuted},
	} {
		r.join(st, id, "bms-1/s"+string(rune('0'+id.UserID)))
	}
	var msgs []any
	out := r.start(st, Actor{UserID: 1, Host: true}, protocol.BreakoutRoomsStart{Extend: "x", RoomInfos: []protocol.BreakoutRoomInfo{
		{RoomID: 10, Name: "Algebra", MixerMode: protocol.MixerServer, UserItems: []protocol.BreakoutRoomUserItem{{UserUmsID: 902}, {UserUmsID: 905}}},
		{RoomID: 20, Name: "Poetry", MixerMode: protocol.MixerClient, UserItems: []protocol.BreakoutRoomUserItem{{UserID: 3}}},
	}})
	msgs = append(msgs, out.notes...)
	msgs = append(msgs, r.setRoom(st, Actor{UserID: 2}, protocol.SetUserBreakoutRoom{DestItem: protocol.BreakoutRoomUserItem{UserUmsID: 902, UserCurrentRoomID: 10}}).notes...)
	msgs = append(msgs, r.subscribe(st, Actor{UserID: 1, Host: true}, protocol.UserSubscribeInBreakoutRoom{User: 1, SubscribeInfos: []protocol.BreakoutRoomSubscribeInfo{{RoomID: 10, Privilege: 3}, {RoomID: 20, Privilege: 1}}}).notes...)
	p := Derive(st)
	msgs = append(msgs, p.Messages(st.E164, 4, Full(p))...)
	msgs = append(msgs, r.stop(st, Actor{UserID: 1, Host: true}, 0).notes...)
	p = Derive(st)
	msgs = append(msgs, p.Messages(st.E164, 5, Delta{Mixer: true, CDTS: true, CDTSSubs: []uint32{1}, MixerSub: []uint32{1}})...)

	var got bytes.Buffer
	for _, m := range msgs {
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got.Write(data)
		got.WriteByte('\n')
	}
	path := filepath.Join("testdata", "messages.golden.jsonl")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGoldenMessages -update to write it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("messages differ from %s (run with -update if the change is meant):\n%s", path, got.Bytes())
	}
}
