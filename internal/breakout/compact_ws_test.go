package breakout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/protocol"
)

// Clients of both forms on two instances, the start made on one: those
// that asked for the compact form get their own entry, the rooms, the
// server's time and the state's version, and the list with its version
// on demand; the others get the seed's exact messages, byte for byte what
// the host got.
func TestCompactAndFullClientsOfOneStart(t *testing.T) {
	e := start(t, setup{insts: 2})
	a, b := e.insts[0], e.insts[1]
	e164 := e.conference()
	host := e.connect(a, e164, who{id: 1, host: true, audio: protocol.AudioUnmuted})
	compactA := e.connect(a, e164, who{id: 2, ums: 902, audio: protocol.AudioUnmuted, compact: true})
	compactB := e.connect(b, e164, who{id: 3, audio: protocol.AudioMuted, compact: true})
	fullB := e.connect(b, e164, who{id: 4, audio: protocol.AudioMuted})

	host.send(startReq(e164, 1, []protocol.BreakoutRoomInfo{
		room(10, protocol.MixerServer, item(0, 902), item(3, 0)),
		room(20, protocol.MixerClient, item(4, 0), item(0, 905)),
	}))
	seed := host.expect(protocol.BMSBreakoutRoomsStartNotify, nil)
	st, _ := e.waitPlan(a, e164)

	// The seed's form: the same bytes everywhere, nothing added.
	got := fullB.expect(protocol.BMSBreakoutRoomsStartNotify, nil)
	if !bytes.Equal(got.Data, seed.Data) {
		t.Fatalf("a client of the full form on another instance got\n%s\nthe host got\n%s", got.Data, seed.Data)
	}
	full := decode[protocol.BreakoutRoomsStartNotify](t, seed)
	if again, _ := json.Marshal(full); !bytes.Equal(again, seed.Data) {
		t.Fatalf("the full form is not the seed's message:\n%s\nre-encoded\n%s", seed.Data, again)
	}
	users := 0
	for _, ri := range full.RoomInfos {
		users += len(ri.UserItems)
	}
	if users != 5 {
		t.Fatalf("the full form names %d users, want 5", users)
	}

	// The compact form, on the instance that made the change and on the
	// other.
	for _, tc := range []struct {
		u      *user
		preset uint32
	}{{compactA, 10}, {compactB, 10}} {
		m := tc.u.expect(protocol.BMSBreakoutRoomsStartNotify, nil)
		n := decode[protocol.BreakoutRoomsStartCompactNotify](t, m)
		if n.Form != protocol.NotifyCompact || n.Version != st.Version || n.Timestamp != full.Timestamp || n.StatusCode != 0 || n.UserID != 1 {
			t.Fatalf("user %d: form %q version %d (state %d) timestamp %d (full %d) status %d", tc.u.id, n.Form, n.Version, st.Version, n.Timestamp, full.Timestamp, n.StatusCode)
		}
		if n.UserItem == nil || n.UserItem.UserID != tc.u.id || n.UserItem.UserUmsID != tc.u.ums ||
			n.UserItem.UserPresetRoomID != tc.preset || n.UserItem.UserCurrentRoomID != breakout.MainRoom {
			t.Fatalf("user %d: own entry %+v, want preset %d", tc.u.id, n.UserItem, tc.preset)
		}
		if len(n.Rooms) != 3 || n.Rooms[1].RoomID != 10 || n.Rooms[1].UserCount != 2 || n.Rooms[2].MixerMode != protocol.MixerClient {
			t.Fatalf("user %d: rooms %+v", tc.u.id, n.Rooms)
		}
		if strings.Contains(string(m.Data), `"roomInfos"`) || len(m.Data) >= len(seed.Data) {
			t.Fatalf("user %d: the compact form holds the plan (%d bytes, the full %d)", tc.u.id, len(m.Data), len(seed.Data))
		}
		// It can act on it: join its preset room.
		tc.u.send(move(e164, tc.u.id, tc.u.id, tc.u.ums, n.UserItem.UserPresetRoomID))
		tc.u.expect(protocol.BMSSetUserBreakoutRoomNotify, func(m breakout.Message) bool {
			d := decode[protocol.SetUserBreakoutRoomNotify](t, m)
			return d.StatusCode == 0 && d.DestItem.UserID == tc.u.id && d.DestItem.UserCurrentRoomID == tc.preset
		})
	}

	// The whole plan on demand: with its version for the compact form,
	// the seed's message for the other.
	st, _ = e.waitPlan(b, e164)
	compactB.send(protocol.GetBreakoutRoomsList{Type: protocol.BMSGetBreakoutRoomsList, ConfID: e164, UserID: 3})
	l := decode[protocol.GetBreakoutRoomsListNotify](t, compactB.expect(protocol.BMSGetBreakoutRoomsListNotify, nil))
	if l.Version != st.Version || l.Status != 1 || len(l.RoomInfos) != 3 {
		t.Fatalf("compact list: version %d (state %d), status %d, %d rooms", l.Version, st.Version, l.Status, len(l.RoomInfos))
	}
	fullB.send(protocol.GetBreakoutRoomsList{Type: protocol.BMSGetBreakoutRoomsList, ConfID: e164, UserID: 4})
	m := fullB.expect(protocol.BMSGetBreakoutRoomsListNotify, nil)
	if strings.Contains(string(m.Data), `"version"`) {
		t.Fatalf("the seed's list carries a version: %s", m.Data)
	}
}

// A form the service does not know is refused before the ticket is used:
// the client connects with the same ticket and a form it knows.
func TestUnknownNotifyFormRefused(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	tr := issue(t, in, e164, breakout.TicketRequest{UserID: 5})
	refused(t, in, tr.URL+"&notify=tiny", "", protocol.ErrBadRequest)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := breakout.Dial(ctx, in.base, tr.URL+"&notify="+protocol.NotifyFull)
	if err != nil {
		t.Fatalf("the ticket was used by the refused connection: %v", err)
	}
	defer c.CloseNow()
	entered(t, c, e164, 5)
}
