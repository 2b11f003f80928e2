package medianode

import (
	"context"
	"encoding/json"
	"runtime"
	"slices"
	"sync"
	"time"
	"weak"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// The breakout audio routing a node is told (seed 002 "audio"): the
// breakout service sends the mixer and the forwarder (cdts) of the node
// running a conference the rooms and who speaks and hears in them. The
// simulator applies those messages the way a node must — per item, the
// message of the highest version wins, since handlers run concurrently —
// and keeps a bounded log of them, full payloads, for tests to assert.

// audioLogLimit is how many AUDIO_* messages a node remembers per
// conference.
const audioLogLimit = 1000

// AudioState is what a node applied of a conference's breakout audio: the
// last room state sent to its mixer and to its cdts, and each user's
// subscriptions to other rooms (users with none are left out).
type AudioState struct {
	Mixer              *protocol.BreakoutRoomStateToMixer
	CDTS               *protocol.BreakoutRoomStateToCDTS
	CDTSSubscriptions  map[uint32][]protocol.BreakoutRoomSubscribeInfo
	MixerSubscriptions map[uint32][]protocol.UserAudioSubscribeInfoMixer
}

// AudioMessage is one AUDIO_* message a node received.
type AudioMessage struct {
	Type    string
	ConfID  string
	Version int64
	At      time.Time
	Data    json.RawMessage
}

// AudioPlan returns what the node applied of a conference's breakout
// audio (the zero AudioState if it was told nothing). The record outlives
// a Kill: it is the log of what the node received.
func (n *Node) AudioPlan(e164 string) AudioState {
	b := n.audio()
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.confs[e164]
	out := AudioState{
		CDTSSubscriptions:  map[uint32][]protocol.BreakoutRoomSubscribeInfo{},
		MixerSubscriptions: map[uint32][]protocol.UserAudioSubscribeInfoMixer{},
	}
	if c == nil {
		return out
	}
	out.Mixer, out.CDTS = clonePtr(c.mixer), clonePtr(c.cdts)
	for u, s := range c.cdtsSubs {
		if len(s.subs) > 0 {
			out.CDTSSubscriptions[u] = slices.Clone(s.subs)
		}
	}
	for u, s := range c.mixerSubs {
		if len(s.rooms) > 0 {
			out.MixerSubscriptions[u] = slices.Clone(s.rooms)
		}
	}
	return out
}

// AudioLog returns the AUDIO_* messages the node received for a
// conference, the oldest first: the last 1,000.
func (n *Node) AudioLog(e164 string) []AudioMessage {
	b := n.audio()
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.confs[e164]
	if c == nil {
		return nil
	}
	out := make([]AudioMessage, 0, len(c.log))
	out = append(out, c.log[c.next:]...)
	return append(out, c.log[:c.next]...)
}

// audioBook is a node's breakout audio, by conference.
type audioBook struct {
	mu    sync.Mutex
	confs map[string]*audioConf
}

type audioConf struct {
	mixer     *protocol.BreakoutRoomStateToMixer
	cdts      *protocol.BreakoutRoomStateToCDTS
	cdtsSubs  map[uint32]cdtsSub
	mixerSubs map[uint32]mixerSub
	log       []AudioMessage
	next      int // where the next entry goes once log is full
}

type cdtsSub struct {
	version int64
	subs    []protocol.BreakoutRoomSubscribeInfo
}

type mixerSub struct {
	version int64
	rooms   []protocol.UserAudioSubscribeInfoMixer
}

// audioBooks holds each node's book beside it: the Node type predates
// breakout audio. Weak keys let a node that is gone take its book along.
var audioBooks sync.Map // weak.Pointer[Node] -> *audioBook

func (n *Node) audio() *audioBook {
	key := weak.Make(n)
	if b, ok := audioBooks.Load(key); ok {
		return b.(*audioBook)
	}
	b, loaded := audioBooks.LoadOrStore(key, &audioBook{confs: map[string]*audioConf{}})
	if !loaded {
		runtime.AddCleanup(n, func(k weak.Pointer[Node]) { audioBooks.Delete(k) }, key)
	}
	return b.(*audioBook)
}

// handleAudio handles the four AUDIO_* messages of the breakout service.
func (s *session) handleAudio(_ context.Context, m *bus.Msg) {
	var head struct {
		ConfID  string `json:"confID"`
		Version int64  `json:"version"`
	}
	err := m.Decode(&head)
	f, ok := s.admit(m, head.ConfID)
	if !ok || err != nil || head.ConfID == "" || (f != nil && f.Nack != "") {
		return
	}
	if err := s.n.audio().apply(m.Type, head.ConfID, head.Version, m.Data); err != nil {
		s.n.log.Debug("undecodable breakout audio message", "type", m.Type, "e164", head.ConfID, "err", err)
	}
}

func (b *audioBook) apply(typ, e164 string, version int64, data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.confs[e164]
	if c == nil {
		c = &audioConf{cdtsSubs: map[uint32]cdtsSub{}, mixerSubs: map[uint32]mixerSub{}}
		b.confs[e164] = c
	}
	c.record(AudioMessage{Type: typ, ConfID: e164, Version: version, At: time.Now(), Data: slices.Clone(data)})
	switch typ {
	case protocol.AudioBreakoutRoomStateToMixer:
		var v protocol.BreakoutRoomStateToMixer
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		if c.mixer == nil || c.mixer.Version <= v.Version {
			c.mixer = &v
		}
	case protocol.AudioBreakoutRoomStateToCDTS:
		var v protocol.BreakoutRoomStateToCDTS
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		if c.cdts == nil || c.cdts.Version <= v.Version {
			c.cdts = &v
		}
	case protocol.AudioBreakoutSubscribeToCDTS:
		var v protocol.BreakoutSubscribeToCDTS
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		for _, u := range v.UserSubscribeInfos {
			if old, ok := c.cdtsSubs[u.User]; !ok || old.version <= v.Version {
				c.cdtsSubs[u.User] = cdtsSub{version: v.Version, subs: u.SubscribeInfos}
			}
		}
	case protocol.AudioBreakoutSubscribeToMixer:
		var v protocol.BreakoutSubscribeToMixer
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		if old, ok := c.mixerSubs[v.User]; !ok || old.version <= v.Version {
			c.mixerSubs[v.User] = mixerSub{version: v.Version, rooms: v.RoomInfos}
		}
	}
	return nil
}

func (c *audioConf) record(m AudioMessage) {
	if len(c.log) < audioLogLimit {
		c.log = append(c.log, m)
		return
	}
	c.log[c.next] = m
	c.next = (c.next + 1) % audioLogLimit
}

// clonePtr copies a decoded message deeply, so that callers cannot change
// the node's record.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	data, err := json.Marshal(p)
	if err != nil {
		return nil
	}
	var v T
	if json.Unmarshal(data, &v) != nil {
		return nil
	}
	return &v
}
