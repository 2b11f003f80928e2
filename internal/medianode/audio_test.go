package medianode

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// The node applies the breakout service's AUDIO_* messages per item, the
// highest version winning whatever order they arrive in, and logs them
// with their payloads.
func TestBreakoutAudio(t *testing.T) {
	h := newHarness(t)
	n, _ := h.node(Options{})
	send := func(v any) {
		t.Helper()
		if err := h.sched.Publish(protocol.SubjectToNode(n.ID()), v); err != nil {
			t.Fatal(err)
		}
	}
	mixer := func(version int64, users ...uint32) protocol.BreakoutRoomStateToMixer {
		infos := []protocol.AudioConfigMixerInfo{}
		for _, u := range users {
			infos = append(infos, protocol.AudioConfigMixerInfo{User: u, Privilege: 3})
		}
		return protocol.BreakoutRoomStateToMixer{Type: protocol.AudioBreakoutRoomStateToMixer, ConfID: "5100001", Version: version, Status: 1,
			RoomInfos: []protocol.BreakoutRoomUserInfoMixer{{RoomID: 300, UserInfos: infos}}}
	}
	// Version 3 arrives before version 2: 3 stays.
	send(mixer(3, 1, 2))
	send(mixer(2, 1))
	send(protocol.BreakoutRoomStateToCDTS{Type: protocol.AudioBreakoutRoomStateToCDTS, ConfID: "5100001", Version: 2, Status: 1,
		RoomInfos: []protocol.BreakoutRoomAudioInfo{{RoomID: 300, UserInfos: []protocol.BreakoutRoomUserInfo{{UserID: 1, Privilege: 3}}}}})
	send(protocol.BreakoutSubscribeToCDTS{Type: protocol.AudioBreakoutSubscribeToCDTS, ConfID: "5100001", Version: 4, GroupID: 300,
		UserSubscribeInfos: []protocol.UserAudioSubscribeInfo{
			{User: 1, SubscribeInfos: []protocol.BreakoutRoomSubscribeInfo{{RoomID: 10, Privilege: 1}}},
			{User: 2, SubscribeInfos: []protocol.BreakoutRoomSubscribeInfo{{RoomID: 20, Privilege: 3}}},
		}})
	// User 2's subscriptions end (a full update, empty) at version 5.
	send(protocol.BreakoutSubscribeToCDTS{Type: protocol.AudioBreakoutSubscribeToCDTS, ConfID: "5100001", Version: 5, GroupID: 10,
		UserSubscribeInfos: []protocol.UserAudioSubscribeInfo{{User: 2, SubscribeInfos: []protocol.BreakoutRoomSubscribeInfo{}}}})
	send(protocol.BreakoutSubscribeToMixer{Type: protocol.AudioBreakoutSubscribeToMixer, ConfID: "5100001", Version: 4, User: 1,
		RoomInfos: []protocol.UserAudioSubscribeInfoMixer{{RoomID: 10, Info: protocol.AudioConfigMixerInfo{User: 1, Privilege: 3}}}})
	send(protocol.BreakoutSubscribeToMixer{Type: protocol.AudioBreakoutSubscribeToMixer, ConfID: "5100001", Version: 3, User: 1,
		RoomInfos: []protocol.UserAudioSubscribeInfoMixer{}})

	testkit.Eventually(t, 5*time.Second, func() error {
		if len(n.AudioLog("5100001")) < 7 {
			return fmt.Errorf("the node logged %d of 7 messages", len(n.AudioLog("5100001")))
		}
		return nil
	})
	a := n.AudioPlan("5100001")
	if a.Mixer == nil || a.Mixer.Version != 3 || len(a.Mixer.RoomInfos[0].UserInfos) != 2 {
		t.Fatalf("mixer state: %+v", a.Mixer)
	}
	if a.CDTS == nil || a.CDTS.Version != 2 {
		t.Fatalf("cdts state: %+v", a.CDTS)
	}
	if len(a.CDTSSubscriptions) != 1 || a.CDTSSubscriptions[1][0].RoomID != 10 {
		t.Fatalf("cdts subscriptions: %+v (user 2's ended)", a.CDTSSubscriptions)
	}
	if got := a.MixerSubscriptions[1]; len(got) != 1 || got[0].RoomID != 10 {
		t.Fatalf("mixer subscriptions: %+v (version 4 wins over 3)", a.MixerSubscriptions)
	}
	log := n.AudioLog("5100001")
	if !slices.ContainsFunc(log, func(m AudioMessage) bool {
		return m.Type == protocol.AudioBreakoutSubscribeToMixer && m.Version == 3 && len(m.Data) > 0
	}) {
		t.Fatal("the log lacks the stale mixer subscription")
	}
	// The caller's copy is its own.
	a.Mixer.RoomInfos[0].UserInfos[0].User = 99
	if n.AudioPlan("5100001").Mixer.RoomInfos[0].UserInfos[0].User == 99 {
		t.Fatal("AudioPlan shares the node's record")
	}
	if got := n.AudioPlan("5199999"); got.Mixer != nil || len(n.AudioLog("5199999")) != 0 {
		t.Fatal("a conference the node was told nothing of has a plan")
	}
	if !slices.ContainsFunc(n.Received(), func(r Received) bool { return r.Type == protocol.AudioBreakoutRoomStateToMixer && r.E164 == "5100001" }) {
		t.Fatal("Received does not list the audio messages")
	}
}
