package breakout_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/protocol"
)

// The REST mirror: an operator does what a host does, with the API's
// bearer token, error envelope and codes.
func TestRESTMirror(t *testing.T) {
	e := start(t, setup{})
	in := e.insts[0]
	e164 := e.conference()
	base := "/v1/conferences/" + e164 + "/breakout"
	u2 := e.connect(in, e164, who{id: 2, audio: protocol.AudioUnmuted})
	u3 := e.connect(in, e164, who{id: 3, audio: protocol.AudioUnmuted})

	t.Run("auth", func(t *testing.T) {
		if code, eb := rest(t, in, "GET", base, "", nil, nil); code != 401 || eb.Error.Code != protocol.ErrUnauthorized {
			t.Fatalf("no token: %d %+v", code, eb)
		}
	})
	t.Run("method not allowed", func(t *testing.T) {
		if code, eb := rest(t, in, "DELETE", base+"/start", token, nil, nil); code != 405 || eb.Error.Code != "METHOD_NOT_ALLOWED" {
			t.Fatalf("DELETE start: %d %+v", code, eb)
		}
	})
	t.Run("bad number", func(t *testing.T) {
		if code, eb := rest(t, in, "GET", "/v1/conferences/abc/breakout", token, nil, nil); code != 400 || eb.Error.Code != protocol.ErrBadRequest {
			t.Fatalf("bad e164: %d %+v", code, eb)
		}
	})
	t.Run("strict body", func(t *testing.T) {
		code, eb := rest(t, in, "POST", base+"/stop", token, map[string]any{"delay": 3}, nil)
		if code != 400 || !strings.Contains(eb.Error.Message, "delay") {
			t.Fatalf("unknown field: %d %+v", code, eb)
		}
	})

	var started protocol.BreakoutRoomsStartNotify
	if code, eb := rest(t, in, "POST", base+"/start", token, breakout.StartRequest{RoomInfos: []protocol.BreakoutRoomInfo{
		room(10, protocol.MixerServer, item(2, 0)), room(20, protocol.MixerClient, item(3, 0)),
	}}, &started); code != 200 || started.StatusCode != 0 || started.UserID != 0 {
		t.Fatalf("start: %d %+v %+v", code, eb, started)
	}
	u2.expect(protocol.BMSBreakoutRoomsStartNotify, status(0))
	if code, eb := rest(t, in, "POST", base+"/start", token, breakout.StartRequest{}, nil); code != 409 || eb.Error.Code != "BREAKOUT_ALREADY_ACTIVE" {
		t.Fatalf("second start: %d %+v", code, eb)
	}
	for _, mv := range []struct{ user, room uint32 }{{2, 10}, {3, 20}} {
		var n protocol.SetUserBreakoutRoomNotify
		code, eb := rest(t, in, "POST", base+"/moves", token, breakout.MoveRequest{DestItem: protocol.BreakoutRoomUserItem{UserID: mv.user, UserCurrentRoomID: mv.room}}, &n)
		if code != 200 || n.DestItem.UserCurrentRoomID != mv.room {
			t.Fatalf("move: %d %+v %+v", code, eb, n)
		}
	}
	if code, eb := rest(t, in, "POST", base+"/moves", token, breakout.MoveRequest{DestItem: protocol.BreakoutRoomUserItem{UserID: 2, UserCurrentRoomID: 77}}, nil); code != 404 || eb.Error.Code != protocol.ErrUnknownRoom || eb.Error.Message == "" {
		t.Fatalf("move to no room: %d %+v", code, eb)
	}
	if code, eb := rest(t, in, "PUT", base+"/subscriptions/2", token, breakout.SubscribeRequest{SubscribeInfos: []protocol.BreakoutRoomSubscribeInfo{sub(20, 1)}}, nil); code != 200 {
		t.Fatalf("subscribe: %d %+v", code, eb)
	}
	if code, eb := rest(t, in, "POST", base+"/mute", token, breakout.MuteRequest{Mode: protocol.MuteGroupAll, GroupID: 20}, nil); code != 200 {
		t.Fatalf("mute room 20: %d %+v", code, eb)
	}
	if code, eb := rest(t, in, "POST", base+"/record", token, breakout.RecordRequest{RoomID: 10}, nil); code != 200 {
		t.Fatalf("record: %d %+v", code, eb)
	}
	if code, eb := rest(t, in, "POST", base+"/audio-state", token, breakout.AudioStateRequest{UserID: 2, AudioState: protocol.AudioClosed}, nil); code != 200 {
		t.Fatalf("audio state: %d %+v", code, eb)
	}
	u3.expect(protocol.AudioUserAudioStateNotify, status(0))
	e.waitPlan(in, e164)

	var v breakout.View
	if code, eb := rest(t, in, "GET", base, token, nil, &v); code != 200 {
		t.Fatalf("GET: %d %+v", code, eb)
	}
	if !v.Active || v.RecordRoomID != 10 || len(v.RoomInfos) != 3 || len(v.Users) != 2 || v.Node == "" {
		t.Fatalf("view: %+v", v)
	}
	for _, u := range v.Users {
		switch u.UserID {
		case 2:
			if u.AudioState != protocol.AudioClosed || len(u.SubscribeInfos) != 1 || u.UserCurrentRoomID != 10 {
				t.Fatalf("user 2: %+v", u)
			}
		case 3:
			if u.AudioState != protocol.AudioMuted || u.UserCurrentRoomID != 20 {
				t.Fatalf("user 3: %+v", u)
			}
		}
	}
	var av breakout.AudioView
	if code, eb := rest(t, in, "GET", base+"/audio", token, nil, &av); code != 200 {
		t.Fatalf("GET audio: %d %+v", code, eb)
	}
	if av.Status != 1 || av.RecordRoomID != 10 || len(av.Hearing) != 2 || av.Mixer.Type != protocol.AudioBreakoutRoomStateToMixer || len(av.CDTSSubscriptions) != 1 {
		t.Fatalf("audio view: %+v", av)
	}
	for _, h := range av.Hearing {
		if len(h.Hears) != 0 || len(h.SpeaksIn) != 0 {
			t.Fatalf("nobody speaks (user 2 closed its audio, room 20 is muted): %+v", h)
		}
	}
	var stopped protocol.BreakoutRoomsStopNotify
	if code, eb := rest(t, in, "POST", base+"/stop", token, breakout.StopRequest{}, &stopped); code != 200 || stopped.DelayTime != 0 {
		t.Fatalf("stop: %d %+v", code, eb)
	}
	u2.expect(protocol.BMSBreakoutRoomsStopNotify, status(0))
	if code, _ := rest(t, in, "GET", base, token, nil, &v); code != 200 || v.Active || !slices.ContainsFunc(v.RoomInfos, func(r protocol.BreakoutRoomInfo) bool { return r.RoomID == 20 }) {
		t.Fatalf("after stop: %+v", v)
	}
	// The API's own routes are still served beside the mounted ones.
	if code, _ := rest(t, in, "GET", "/healthz", "", nil, nil); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
}
