package medianode

import (
	"context"
	"fmt"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// The batch messages carry many conferences in one request: a restore of
// a lost node's conferences (MAU_MCU_RESTORECONFS_REQ) and a release of
// copies the scheduler does not count (MAU_MCU_RELEASECONFS_CMD). Each is
// handled as its per-conference message would be, conference by
// conference: a Fault scoped to the per-conference type applies to the
// batch, and Received logs the batch once (with no e164), then each of its
// conferences under the per-conference type.

// perConference is the per-conference type of each batch type.
var perConference = map[string]string{
	protocol.MAUMCURestoreConfsReq: protocol.MAUMCURestoreConfReq,
	protocol.MAUMCUReleaseConfsCmd: protocol.MAUMCUReleaseConfCmd,
}

// hostBatchReq is the part of MAU_MCU_RESTORECONFS_REQ a node keeps (see
// hostReq).
type hostBatchReq struct {
	Confs []hostConf `json:"confs"`
}

type hostConf struct {
	E164     string `json:"e164"`
	Name     string `json:"confname"`
	Password string `json:"password"`
	EndTime  int64  `json:"endtime"`
	Duration int    `json:"duration"`
}

// admitMany logs a batch message and its conferences and returns the fault
// that applies; ok as in admit.
func (s *session) admitMany(m *bus.Msg, e164s func(yield func(string) bool)) (f *Fault, ok bool) {
	s.n.recv.add(m.Type, "")
	one := perConference[m.Type]
	for e := range e164s {
		s.n.recv.add(one, e)
	}
	f = s.n.faultFor(m.Type)
	return f, f == nil || !f.Silent
}

// handleRestoreMany handles MAU_MCU_RESTORECONFS_REQ: host each conference,
// answering per conference; one already hosted counts as restored.
func (s *session) handleRestoreMany(_ context.Context, m *bus.Msg) {
	n := s.n
	var req hostBatchReq
	err := m.Decode(&req)
	f, ok := s.admitMany(m, func(yield func(string) bool) {
		for _, c := range req.Confs {
			if !yield(c.E164) {
				return
			}
		}
	})
	if !ok {
		return
	}
	if err != nil || len(req.Confs) == 0 {
		s.refuse(m, f, protocol.MCURestoreConfsNack, "", protocol.ErrBadRequest, "a list of conferences, each with an e164, is required")
		return
	}
	ack := protocol.NodeConfsAck{Type: protocol.MCURestoreConfsAck, IP: n.opts.IP, PID: s.pid, Results: make([]protocol.NodeConfResult, len(req.Confs))}
	if f != nil && f.Nack != "" {
		for i, c := range req.Confs {
			ack.Results[i] = protocol.NodeConfResult{E164: c.E164, ErrCode: f.Nack, ErrMsg: s.injected()}
		}
	} else {
		n.hostMany(req.Confs, ack.Results)
	}
	s.answer(m, f, ack, nil)
}

// hostMany hosts each conference it can, as host does, and writes each
// one's result into out.
func (n *Node) hostMany(confs []hostConf, out []protocol.NodeConfResult) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, c := range confs {
		out[i].E164 = c.E164
		switch {
		case c.E164 == "":
			out[i].ErrCode, out[i].ErrMsg = protocol.ErrBadRequest, "a conference with an e164 is required"
		case n.hostLocked(c.E164, c.Name, c.Password, c.EndTime, c.Duration):
			out[i].ErrCode = CodeNodeFull
			out[i].ErrMsg = fmt.Sprintf("node %s hosts as many conferences as its capacity (%d)", n.opts.ID, n.opts.Capacity)
		}
	}
}

// handleReleaseMany handles MAU_MCU_RELEASECONFS_CMD: stop hosting each
// conference, and answer which were hosted. No release notice follows: the
// scheduler sends it for copies it does not count.
func (s *session) handleReleaseMany(_ context.Context, m *bus.Msg) {
	var cmd protocol.ConfsCmd
	err := m.Decode(&cmd)
	f, ok := s.admitMany(m, func(yield func(string) bool) {
		for _, e := range cmd.E164s {
			if !yield(e) {
				return
			}
		}
	})
	if !ok {
		return
	}
	switch {
	case err != nil:
		s.refuse(m, f, protocol.ErrorReplyType, "", protocol.ErrBadRequest, "a list of e164 numbers is required")
		return
	case f != nil && f.Nack != "":
		s.refuse(m, f, protocol.ErrorReplyType, "", f.Nack, s.injected())
		return
	}
	s.answer(m, f, protocol.ConfsAck{Type: protocol.MCUReleaseConfsAck, Released: s.n.releaseMany(cmd.E164s)}, nil)
}

// releaseMany stops hosting each conference and answers those it hosted.
func (n *Node) releaseMany(e164s []string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(e164s))
	for _, e := range e164s {
		if n.releaseLocked(e) {
			out = append(out, e)
		}
	}
	return out
}
