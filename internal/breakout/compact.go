package breakout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/url"

	"github.com/convene/convene/internal/protocol"
)

// The compact form of BMS_CONF_BREAKOUT_ROOMS_START_NOTIFY. A start
// names every user of the plan, so its seed form grows with the
// conference (about 100 KB for 1,000 users), and every user receives it:
// a start to 1,000 users is 100 MB to write. A client that asks for the
// compact form (notify=compact on its WebSocket URL) receives the rooms
// without their users and its own entry, a few KB, and asks for the plan
// (BMS_CONF_GET_BREAKOUT_ROOMS_LIST) if it wants it.
//
// The notification travels between instances in the seed's form, so that
// every instance, whatever its version, can serve any client; each
// instance derives the compact form from it once per start and writes
// its clients their own entry with it.

// notifyForm reads the notify query parameter of a WebSocket URL:
// whether the client asks for the compact form.
func notifyForm(q url.Values) (compact bool, err error) {
	switch v := q.Get("notify"); v {
	case "", protocol.NotifyFull:
		return false, nil
	case protocol.NotifyCompact:
		return true, nil
	default:
		return false, fmt.Errorf("notify=%s is no form of the notifications: connect with notify=%s (the seed's messages, the default) or notify=%s (a start without every user's entry)",
			v, protocol.NotifyFull, protocol.NotifyCompact)
	}
}

// CompactPath is a WebSocket path of a ticket (TicketResponse.URL) that
// asks for the compact form of the notifications.
func CompactPath(path string) string {
	u, err := url.Parse(path)
	if err != nil {
		return path // Dial reports it
	}
	q := u.Query()
	q.Set("notify", protocol.NotifyCompact)
	u.RawQuery = q.Encode()
	return u.String()
}

// compactStart is a start notify in the compact form, encoded once for
// every user: the common part, and each user's entry by user id as the
// seed's notify encoded it.
type compactStart struct {
	common []byte // the notify without userItem, ending in '}'
	items  map[uint32]json.RawMessage
}

// seedStart is a start notify in the seed's form with its users left
// encoded: the compact form copies them, it need not decode them.
type seedStart struct {
	protocol.BreakoutRoomsStartNotify
	RoomInfos []seedRoom `json:"roomInfos"` // hides the embedded one
}

type seedRoom struct {
	RoomID    uint32            `json:"roomID"`
	Name      string            `json:"name"`
	MixerMode uint32            `json:"mixerMode"`
	Extend    string            `json:"extend"`
	UserItems []json.RawMessage `json:"userItems"`
}

// newCompactStart derives the compact form from a start notify in the
// seed's form; version is the breakout state's version after the start.
func newCompactStart(full []byte, version int64) (*compactStart, error) {
	var n seedStart
	if err := json.Unmarshal(full, &n); err != nil {
		return nil, err
	}
	common, err := json.Marshal(compactOf(n, version))
	if err != nil {
		return nil, err
	}
	if len(common) == 0 || common[len(common)-1] != '}' {
		return nil, fmt.Errorf("breakout: compact start encoded as %.20q", common)
	}
	c := &compactStart{common: common, items: make(map[uint32]json.RawMessage, len(n.RoomInfos)*8)}
	for _, ri := range n.RoomInfos {
		for _, raw := range ri.UserItems {
			id, err := itemUser(raw)
			if err != nil {
				return nil, err
			}
			if id == 0 {
				continue
			}
			// A user id may also be the last one of a user who left:
			// the entry of the one in the conference wins.
			if prev, ok := c.items[id]; ok && !replaces(raw, prev) {
				continue
			}
			c.items[id] = raw
		}
	}
	return c, nil
}

// compactOf is a start notify's compact form without the user's entry.
func compactOf(n seedStart, version int64) protocol.BreakoutRoomsStartCompactNotify {
	c := protocol.BreakoutRoomsStartCompactNotify{
		Type: n.Type, StatusCode: n.StatusCode, Message: n.Message, Timestamp: n.Timestamp, ConfID: n.ConfID,
		UserID: n.UserID, Extend: n.Extend, Form: protocol.NotifyCompact, Version: version,
		Rooms: make([]protocol.BreakoutRoomBrief, 0, len(n.RoomInfos)),
	}
	for _, ri := range n.RoomInfos {
		c.Rooms = append(c.Rooms, protocol.BreakoutRoomBrief{
			RoomID: ri.RoomID, Name: ri.Name, MixerMode: ri.MixerMode, Extend: ri.Extend, UserCount: uint32(len(ri.UserItems)),
		})
	}
	return c
}

var userIDPrefix = []byte(`{"userId":`)

// itemUser reads an encoded user entry's user id, from its head when the
// service encoded it ({"userId":n,...}), else by decoding it.
func itemUser(raw json.RawMessage) (uint32, error) {
	if rest, ok := bytes.CutPrefix(raw, userIDPrefix); ok {
		var id uint64
		digits := 0
		for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' && digits < 10 {
			id = id*10 + uint64(rest[digits]-'0')
			digits++
		}
		if digits > 0 && digits < len(rest) && rest[digits] == ',' && id <= math.MaxUint32 {
			return uint32(id), nil
		}
	}
	var it protocol.BreakoutRoomUserItem
	err := json.Unmarshal(raw, &it)
	return it.UserID, err
}

// replaces reports whether entry a, of a user in the conference, wins
// over entry b of the same user id, of a user who left.
func replaces(a, b json.RawMessage) bool {
	var ia, ib protocol.BreakoutRoomUserItem
	if json.Unmarshal(a, &ia) != nil || json.Unmarshal(b, &ib) != nil {
		return false
	}
	return ia.UserCurrentRoomID != 0 && ib.UserCurrentRoomID == 0
}

// forUser is the compact notify for one user: the common part with the
// user's entry, when the plan has one, as its last field.
func (c *compactStart) forUser(userID uint32) []byte {
	item, ok := c.items[userID]
	if !ok {
		return c.common
	}
	const key = `,"userItem":`
	out := make([]byte, 0, len(c.common)+len(key)+len(item))
	out = append(out, c.common[:len(c.common)-1]...)
	out = append(out, key...)
	out = append(out, item...)
	return append(out, '}')
}

// compactForms are the compact forms of a fanout's notifications, each
// derived when a client first asks for it.
type compactForms struct {
	e164    string
	data    []json.RawMessage
	version int64
	log     *slog.Logger
	forms   []*compactStart
	done    []bool
}

// at is the compact form of notification i; nil when it has none (it is
// no start, or it could not be derived: it goes as it is).
func (f *compactForms) at(i int) *compactStart {
	if f.done == nil {
		f.forms, f.done = make([]*compactStart, len(f.data)), make([]bool, len(f.data))
	}
	if !f.done[i] {
		f.done[i] = true
		if isStart(f.data[i]) {
			cs, err := newCompactStart(f.data[i], f.version)
			if err != nil {
				f.log.Error("start notify has no compact form: sent in full", "e164", f.e164, "err", err)
			}
			f.forms[i] = cs
		}
	}
	return f.forms[i]
}

// isStart reports whether an encoded notification is a successful start,
// the one notification with a compact form.
func isStart(data []byte) bool {
	typ, status, ok := head(data)
	return ok && typ == protocol.BMSBreakoutRoomsStartNotify && status == protocol.BreakoutOK
}
