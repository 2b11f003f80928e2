package medianode

import (
	"context"
	"fmt"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// listBook keeps what the node's conference list needs to be reported in
// part. Guarded by Node.mu.
//
// version counts the list's changes and digest is the XOR of
// protocol.ListEntryHash over what the node hosts. whole is the version of
// the last whole list sent, acked the version the scheduler said it holds
// (MAU_MCU_CONFLIST_ACK), and changed what changed since the later of the
// two (e164 -> the version of its last change). A list goes out as a
// delta only when the scheduler holds a version at or after the last
// whole list: a newer whole list is answered first.
type listBook struct {
	version uint64
	digest  uint64
	whole   uint64
	acked   uint64
	changed map[string]uint64
}

func (b *listBook) added(e164 string, createTime int64) {
	b.version++
	b.digest ^= protocol.ListEntryHash(e164, createTime)
	b.note(e164)
}

func (b *listBook) removed(e164 string, createTime int64) {
	b.version++
	b.digest ^= protocol.ListEntryHash(e164, createTime)
	b.note(e164)
}

// note remembers a change once a whole list has gone out: before, there
// is nothing a delta could be relative to.
func (b *listBook) note(e164 string) {
	if b.whole == 0 {
		return
	}
	if b.changed == nil {
		b.changed = make(map[string]uint64)
	}
	b.changed[e164] = b.version
}

// sentWhole records a whole list sent at the current version: no delta
// will be relative to anything older.
func (b *listBook) sentWhole() {
	b.whole = b.version
	clear(b.changed)
}

// deltaOK reports whether a delta can go: the scheduler holds a version
// no older than the last whole list.
func (b *listBook) deltaOK() bool { return b.acked > 0 && b.acked >= b.whole }

// ack records that the scheduler holds the list as of version v and
// forgets the changes up to it. A version older than the last whole list
// (that list's answer is on its way), older than one acknowledged already,
// or one the node never reached (meant for an earlier process) changes
// nothing.
func (b *listBook) ack(v uint64) {
	if v < b.whole || v <= b.acked || v > b.version {
		return
	}
	b.acked = v
	for e, at := range b.changed {
		if at <= v {
			delete(b.changed, e)
		}
	}
}

// reset forgets the lists sent: a new process starts with whole lists.
func (b *listBook) reset() {
	b.version++
	b.digest, b.whole, b.acked = 0, 0, 0
	clear(b.changed)
}

// buildConfList makes the conference list to send: the changes since the
// acknowledged version when a delta can go and whole is false, else the
// whole list.
func (n *Node) buildConfList(whole bool) protocol.ConfListNtf {
	n.mu.Lock()
	defer n.mu.Unlock()
	b := &n.list
	ntf := protocol.ConfListNtf{Version: b.version, Count: len(n.confs), Digest: b.digest}
	if whole || !b.deltaOK() {
		ntf.Confs = make([]protocol.ConfListEntry, 0, len(n.confs))
		for e164, c := range n.confs {
			ntf.Confs = append(ntf.Confs, protocol.ConfListEntry{E164: e164, CreateTime: c.createTime})
		}
		b.sentWhole()
		return ntf
	}
	ntf.Delta, ntf.Since = true, b.acked
	ntf.Confs = make([]protocol.ConfListEntry, 0, len(b.changed))
	for e164 := range b.changed {
		if c, ok := n.confs[e164]; ok {
			ntf.Confs = append(ntf.Confs, protocol.ConfListEntry{E164: e164, CreateTime: c.createTime})
		} else {
			ntf.Removed = append(ntf.Removed, e164)
		}
	}
	return ntf
}

// sendConfList publishes MCU_MAU_CONFLIST_NTF: whole, or what changed
// since the acknowledged version. Lists leave in the order they were
// made, so a receiver never sees an older version after a newer one.
func (s *session) sendConfList(whole bool) error {
	n := s.n
	if f := n.fault.Load(); f != nil && f.NoConfList {
		return nil
	}
	s.listMu.Lock()
	defer s.listMu.Unlock()
	ntf := n.buildConfList(whole)
	if n.opts.OldProtocol {
		ntf.Version, ntf.Count, ntf.Digest = 0, 0, 0
	}
	ntf.Type, ntf.Node, ntf.IP, ntf.PID, ntf.Room = protocol.MCUConfListNtf, n.opts.ID, n.opts.IP, s.pid, n.opts.Room
	ntf.SentAtMs = time.Now().UnixMilli()
	if err := n.bus.Publish(protocol.SubjectFromNodes(n.opts.Platform), ntf); err != nil {
		n.log.Debug("conference list not sent", "err", err)
		return fmt.Errorf("medianode: %s: conference list: %w", n.opts.ID, err)
	}
	return nil
}

// handleConfListAck handles MAU_MCU_CONFLIST_ACK: the scheduler holds the
// list as of a version; later lists carry only what changed since.
func (s *session) handleConfListAck(_ context.Context, m *bus.Msg) {
	var ack protocol.ConfListAck
	err := m.Decode(&ack)
	f, ok := s.admit(m, "")
	if !ok || err != nil || (f != nil && f.Nack != "") || ack.PID != s.pid {
		return
	}
	s.n.mu.Lock()
	s.n.list.ack(ack.Version)
	s.n.mu.Unlock()
}

// handleGetConfList reports the conference list now (a scheduler that just
// became active asks for it whole; one that holds it asks for a delta).
func (s *session) handleGetConfList(_ context.Context, m *bus.Msg) {
	var cmd protocol.GetConfListCmd
	_ = m.Decode(&cmd)
	if _, ok := s.admit(m, ""); !ok {
		return
	}
	if err := s.sendConfList(!cmd.Delta); err != nil {
		s.n.log.Warn("could not send the conference list", "node", s.n.opts.ID, "err", err)
	}
}
