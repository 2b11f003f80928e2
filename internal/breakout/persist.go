package breakout

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/convene/convene/internal/store"
)

// The state as the store keeps it: a meta document and one document per
// user, so that a move writes one user.

// decodeRecord turns a stored record into a state (a record of version 0
// is the empty state).
func decodeRecord(rec store.BreakoutRecord) (*State, error) {
	st := newState(rec.E164)
	st.Version = rec.Version
	if rec.Version == 0 {
		return st, nil
	}
	if err := json.Unmarshal(rec.Meta, &st.Meta); err != nil {
		return nil, fmt.Errorf("breakout: the stored state of %s is unreadable: %w", rec.E164, err)
	}
	if len(st.Meta.Rooms) == 0 || st.Meta.Rooms[0].ID != MainRoom {
		return nil, fmt.Errorf("breakout: the stored state of %s has no main room first", rec.E164)
	}
	for k, data := range rec.Users {
		u := &User{}
		if err := json.Unmarshal(data, u); err != nil {
			return nil, fmt.Errorf("breakout: the stored user %s of %s is unreadable: %w", k, rec.E164, err)
		}
		st.Users[k] = u
	}
	return st, nil
}

// encodeChange is the store change from prev to next; changed is false
// when there is nothing to write.
func encodeChange(prev, next *State, cond string, now int64) (ch store.BreakoutChange, changed bool, err error) {
	ch = store.BreakoutChange{E164: next.E164, Version: prev.Version, Conf: cond, Now: now}
	pm, err := json.Marshal(prev.Meta)
	if err != nil {
		return ch, false, err
	}
	nm, err := json.Marshal(next.Meta)
	if err != nil {
		return ch, false, err
	}
	metaChanged := !bytes.Equal(pm, nm)
	if prev.Version == 0 || metaChanged {
		ch.Meta, ch.Node = nm, next.Meta.Node
	}
	for k, u := range next.Users {
		if p := prev.Users[k]; p != nil && p.equal(u) {
			continue
		}
		data, err := json.Marshal(u)
		if err != nil {
			return ch, false, err
		}
		if ch.SetUsers == nil {
			ch.SetUsers = map[string][]byte{}
		}
		ch.SetUsers[k] = data
	}
	for k := range prev.Users {
		if next.Users[k] == nil {
			ch.DelUsers = append(ch.DelUsers, k)
		}
	}
	if prev.Meta.Deadline != next.Meta.Deadline {
		ch.Countdown = next.Meta.Deadline
		if ch.Countdown == 0 {
			ch.Countdown = -1
		}
	}
	// A state never stored is written only when the command changed it:
	// a conference gains breakout state when breakout is used, not when
	// it starts or moves.
	changed = metaChanged || len(ch.SetUsers) > 0 || len(ch.DelUsers) > 0
	return ch, changed, nil
}
