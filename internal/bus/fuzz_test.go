package bus

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/convene/convene/internal/protocol"
)

// decodeTargets are the message types Convene's services decode from the
// bus, one of each.
func decodeTargets() []any {
	return []any{
		&protocol.Header{}, &protocol.CreateConfReq{}, &protocol.CreateConfAck{}, &protocol.ConfReq{},
		&protocol.DelayConfReq{}, &protocol.ConfDurationNtf{}, &protocol.ConfStateNtf{},
		&protocol.ModifyConfNameReq{}, &protocol.ModifyPasswordReq{}, &protocol.MonitorReq{},
		&protocol.TemplateReq{}, &protocol.NodeConfReq{}, &protocol.NodeConfAck{}, &protocol.ConfListNtf{},
		&protocol.ConfStateChangeNtf{}, &protocol.RegisterReq{}, &protocol.HeartbeatNtf{},
		&protocol.GetResReq{}, &protocol.GetResAck{}, &protocol.NodeStateNtf{}, &protocol.NodeListAck{},
		&protocol.RoomListAck{}, &protocol.ServerRoomStateNtf{}, &protocol.PlatformStateNtf{},
		&protocol.PlatformSetReq{}, &protocol.RegistryNtf{}, &protocol.RegistryQuery{},
		&protocol.RegistryQueryAck{}, &protocol.Nack{}, &ConnEvent{}, &errReply{},
		&map[string]any{}, new(any),
	}
}

// FuzzDecode feeds arbitrary bytes to what every received message goes
// through: type sniffing (typeOf), the NACK decoding of Call, and Decode
// into each message type. Nothing may panic; a well-formed JSON object's
// type must read the same on the fast path as through a full decode; and
// malformed JSON must be refused.
func FuzzDecode(f *testing.F) {
	for _, v := range []any{
		protocol.CreateConfReq{Type: protocol.CMCreateConfReq, E164: "6600001", Name: "standup", Domain: "demo", Scale: 8},
		protocol.ConfListNtf{Type: protocol.MCUConfListNtf, Node: "sim-1", Confs: []protocol.ConfListEntry{{E164: "6600001"}}},
		protocol.HeartbeatNtf{Type: protocol.MCUHeartbeatNtf, Node: "sim-1"},
		protocol.GetResAck{Type: protocol.RMSGetResAck},
		protocol.Nack{Type: protocol.MAUCreateConfNack, ErrCode: protocol.ErrNodeTimeout, ErrMsg: "node sim-1 did not answer"},
		protocol.PlatformStateNtf{Type: protocol.PlatformStateNotify, Platform: "plat-a", State: protocol.PlatformNormal},
		errorReply("BAD_REQUEST", "unknown message type"),
	} {
		data, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `"type"`, `{"type":`, `{"type":"`, `{"type":"A"`, `{"type":"A"}garbage`,
		`{"type":"esc\"aped"}`, `{"type":"\u0041_REQ"}`, `{"type":5}`, `{"type":null}`, `{"type":{"x":1}}`,
		`{"x":1,"type":"LATE_NTF"}`, `{"type":"A","TYPE":"B"}`, `{"type":"A","type":"B"}`,
		"{\"type\":\"\xff\xfe\"}", "{\"type\":\"caf\xc3\xa9\"}", `{"type":"A_NACK","errcode":7}`,
		` {"type":"SPACED"}`, `{"type":"X","conf":{"e164":123}}`, `{"type":"X","confs":[1,2,{"e164":[]}]}`,
		`{"type":"X","confs":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		typ := typeOf(data)
		m := &Msg{Subject: "fuzz", Type: typ, Data: data}
		valid := json.Valid(data)
		for _, v := range decodeTargets() {
			err := m.Decode(v)
			if !valid && err == nil {
				t.Fatalf("Decode took malformed JSON %q into %T", data, v)
			}
		}
		if IsNack(typ) {
			var n struct {
				ErrCode string `json:"errcode"`
				ErrMsg  string `json:"errmsg"`
			}
			_ = m.Decode(&n)
		}
		if want, ok := topLevelType(data); ok && typ != want {
			t.Fatalf("typeOf(%q) = %q, a full decode reads %q", data, typ, want)
		}
	})
}

// topLevelType is the type a full decode reads from a JSON object, when
// that is unambiguous: a valid object with at most one key that matches
// "type" (encoding/json matches keys case-insensitively, the last one
// winning, where the fast path reads the first).
func topLevelType(data []byte) (string, bool) {
	if !json.Valid(data) {
		return "", false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return "", false
	}
	d := json.NewDecoder(bytes.NewReader(data))
	if _, err := d.Token(); err != nil {
		return "", false
	}
	n := 0
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return "", false
		}
		if ks, _ := k.(string); strings.EqualFold(ks, "type") {
			n++
		}
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return "", false
		}
	}
	if n > 1 {
		return "", false
	}
	var h struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(data, &h)
	return h.Type, true
}
