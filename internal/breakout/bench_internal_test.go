package breakout

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/convene/convene/internal/protocol"
)

// benchState is a running conference of n users in rooms rooms.
func benchState(n, rooms int) *State {
	st := newState("7000001")
	st.Meta.Active = true
	for r := 1; r <= rooms; r++ {
		st.Meta.Rooms = append(st.Meta.Rooms, Room{ID: uint32(r), Name: fmt.Sprintf("room %d", r), MixerMode: uint32(r % 2)})
	}
	for i := 1; i <= n; i++ {
		st.Users[userKey(0, uint32(i))] = &User{UserID: uint32(i), Preset: uint32(i%rooms + 1), Current: uint32(i%rooms + 1),
			Privilege: privAll, Audio: protocol.AudioMuted, Session: "x/y", Channel: uint32(i)}
	}
	st.Version = 1
	return st
}

// The work of one move on a conference of 1,000 users, without the store.
func BenchmarkMoveSteps(b *testing.B) {
	st := benchState(1000, 50)
	plan := Derive(st)
	r := rules{speakerLimit: 16, maxRooms: 200, maxUsers: 5000, maxDelay: 3600}
	b.Run("clone", func(b *testing.B) {
		for b.Loop() {
			_ = st.Clone()
		}
	})
	b.Run("op+settle", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			next := st.Clone()
			out := r.setRoom(next, Operator, protocol.SetUserBreakoutRoom{DestItem: protocol.BreakoutRoomUserItem{UserID: uint32(i%1000 + 1), UserCurrentRoomID: uint32(i%50 + 1)}})
			r.settle(st, next, &out)
		}
	})
	b.Run("encode", func(b *testing.B) {
		next := st.Clone()
		next.Users["i5"].Current = 7
		for b.Loop() {
			_, _, _ = encodeChange(st, next, "exists", 0)
		}
	})
	b.Run("derive", func(b *testing.B) {
		for b.Loop() {
			_ = Derive(st)
		}
	})
	b.Run("diff", func(b *testing.B) {
		next := st.Clone()
		next.Users["i5"].Current = 7
		p2 := Derive(next)
		for b.Loop() {
			_ = Diff(plan, p2)
		}
	})
	b.Run("messages", func(b *testing.B) {
		for b.Loop() {
			_ = plan.Messages("7000001", 2, Delta{Mixer: true, CDTS: true})
		}
	})
}

func BenchmarkStart(b *testing.B) {
	st := benchState(1000, 50)
	for _, u := range st.Users {
		u.Current = MainRoom
	}
	st.Meta.Active = false
	req := protocol.BreakoutRoomsStart{}
	for r := 1; r <= 50; r++ {
		req.RoomInfos = append(req.RoomInfos, protocol.BreakoutRoomInfo{RoomID: uint32(r), MixerMode: uint32(r % 2)})
	}
	for i := 1; i <= 1000; i++ {
		ri := &req.RoomInfos[i%50]
		ri.UserItems = append(ri.UserItems, protocol.BreakoutRoomUserItem{UserID: uint32(i)})
	}
	r := rules{speakerLimit: 16, maxRooms: 200, maxUsers: 5000, maxDelay: 3600}
	for b.Loop() {
		next := st.Clone()
		out := r.start(next, Operator, req)
		r.settle(st, next, &out)
		_, _, _ = encodeChange(st, next, "running", 0)
	}
}

// The compact start for 1,000 users: derived once from the seed's
// notify, then each user's own message.
func BenchmarkCompactStart(b *testing.B) {
	st := benchState(1000, 50)
	r := rules{speakerLimit: 16, maxRooms: 200, maxUsers: 5000, maxDelay: 3600}
	full, err := json.Marshal(r.list(st, 1))
	if err != nil {
		b.Fatal(err)
	}
	var note protocol.GetBreakoutRoomsListNotify
	_ = json.Unmarshal(full, &note)
	start, _ := json.Marshal(protocol.BreakoutRoomsStartNotify{Type: protocol.BMSBreakoutRoomsStartNotify, ConfID: st.E164, RoomInfos: note.RoomInfos})
	b.Run("derive", func(b *testing.B) {
		b.SetBytes(int64(len(start)))
		for b.Loop() {
			if _, err := newCompactStart(start, 2); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("per-user", func(b *testing.B) {
		cs, _ := newCompactStart(start, 2)
		for i := 0; b.Loop(); i++ {
			_ = cs.forUser(uint32(i%1000 + 1))
		}
	})
}
