package breakout

import (
	"testing"

	"github.com/convene/convene/internal/protocol"
)

// Connects of one user: a later connect replaces an earlier one, whatever
// order their entries reach the state in; a new ticket always replaces.
func TestJoinKeepsTheLatestConnectOfATicket(t *testing.T) {
	r := rules{now: 1_700_000_000_000, speakerLimit: 16, maxRooms: 200, maxUsers: 5000, maxDelay: 3600}
	user := func(st *State) *User {
		for _, u := range st.Users {
			if u.UserID == 5 {
				return u
			}
		}
		return nil
	}
	id := func(ticket string, attempt int64) Identity {
		return Identity{UserID: 5, Audio: protocol.AudioUnmuted, Ticket: ticket, Attempt: attempt}
	}
	for _, tc := range []struct {
		name      string
		first     Identity
		second    Identity
		wantKick  bool   // the second entry closes the first's session
		wantSess  string // the session the user is on afterwards
		wantRefus bool   // the second entry is refused
	}{
		{"a retry enters after its first connect", id("t1", 1), id("t1", 2), true, "b/2", false},
		{"a first connect enters after its retry", id("t1", 2), id("t1", 1), false, "b/1", true},
		{"a new ticket, whatever its number", id("t1", 2), id("t2", 1), true, "b/2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newState("5100001")
			r.join(st, tc.first, "b/1")
			// The sessions are named for the entry order: b/1 entered first.
			sess := "b/2"
			out := r.join(st, tc.second, sess)
			refusedNow := out.status != protocol.BreakoutOK
			if refusedNow != tc.wantRefus || (out.kick == "b/1") != tc.wantKick {
				t.Fatalf("second entry: status %d, kick %q; want refused %v, kick of b/1 %v", out.status, out.kick, tc.wantRefus, tc.wantKick)
			}
			want := tc.wantSess
			if tc.wantRefus {
				want = "b/1"
			}
			if u := user(st); u == nil || u.Session != want || !u.Online() {
				t.Fatalf("user afterwards: %+v; want online on %s", u, want)
			}
		})
	}
}
