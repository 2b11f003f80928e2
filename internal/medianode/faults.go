package medianode

import (
	"slices"
	"time"

	"github.com/convene/convene/internal/protocol"
)

// Fault makes a node misbehave, for tests and drills. The zero Fault is a
// healthy node.
type Fault struct {
	// Nack, when set, refuses the requests in scope with this errcode (the
	// request's own NACK type, or ERROR for one that has none) and does not
	// apply them.
	Nack string
	// AckDelay delays the replies to requests in scope by this much; the
	// request itself is applied at once. A delay longer than the
	// requester's timeout is a lost ACK: the node hosts a conference the
	// scheduler believes failed.
	AckDelay time.Duration
	// ApplyDelay makes the node handle the requests in scope this much
	// later (apply and answer): a starved process that acts on a request
	// after its requester gave up waiting.
	ApplyDelay time.Duration
	// Silent makes the node receive the messages in scope (Received logs
	// them) but neither apply nor answer them: a hung node. Heartbeats go
	// on.
	Silent bool
	// NoHeartbeat stops heartbeats, so RMS thinks the node dead, while it
	// still answers and reports conference lists. It ignores Only.
	NoHeartbeat bool
	// NoConfList stops the conference lists, periodic and asked for, as
	// from a hung process. It ignores Only.
	NoConfList bool
	// Only lists the message types Nack, AckDelay, ApplyDelay and Silent
	// apply to; empty means MAU_MCU_CREATECONF_REQ and
	// MAU_MCU_RESTORECONF_REQ. A
	// per-conference type stands for its batch form too
	// (MAU_MCU_RESTORECONF_REQ for MAU_MCU_RESTORECONFS_REQ,
	// MAU_MCU_RELEASECONF_CMD for MAU_MCU_RELEASECONFS_CMD).
	Only []string
}

// SetFault replaces the node's current fault; SetFault(Fault{}) heals it.
// It takes effect for messages handled from now on.
func (n *Node) SetFault(f Fault) {
	if f.Nack == "" && f.AckDelay <= 0 && f.ApplyDelay <= 0 && !f.Silent && !f.NoHeartbeat && !f.NoConfList {
		n.fault.Store(nil)
		return
	}
	f.Only = slices.Clone(f.Only)
	n.fault.Store(&f)
}

// Fault returns the node's current fault.
func (n *Node) Fault() Fault {
	if f := n.fault.Load(); f != nil {
		g := *f
		g.Only = slices.Clone(f.Only)
		return g
	}
	return Fault{}
}

// faultFor returns the fault that applies to a message of type typ, or nil.
func (n *Node) faultFor(typ string) *Fault {
	f := n.fault.Load()
	if f == nil || (f.Nack == "" && f.AckDelay <= 0 && f.ApplyDelay <= 0 && !f.Silent) {
		return nil
	}
	if one, ok := perConference[typ]; ok {
		typ = one
	}
	if len(f.Only) == 0 {
		if typ == protocol.MAUMCUCreateConfReq || typ == protocol.MAUMCURestoreConfReq {
			return f
		}
		return nil
	}
	if slices.Contains(f.Only, typ) {
		return f
	}
	return nil
}
