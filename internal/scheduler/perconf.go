package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// Media nodes of earlier releases know only the per-conference restore and
// release (MAU_MCU_RESTORECONF_REQ, MAU_MCU_RELEASECONF_CMD) and send
// conference lists without versions. Such a node, known by its list or by
// its refusal of a batch as a message it does not know, is asked and told
// one conference at a time, with the same outcome.

// perConfAtOnce bounds the per-conference restore requests under way to
// one such node.
const perConfAtOnce = 64

// singles remembers the nodes that refused a batch as unknown.
type singles struct {
	mu    sync.Mutex
	nodes map[string]bool
}

func (g *singles) mark(node string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.nodes == nil {
		g.nodes = make(map[string]bool)
	}
	g.nodes[node] = true
}

func (g *singles) has(node string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nodes[node]
}

// oneByOne reports whether node knows only per-conference messages: its
// lists carry no version, or it refused a batch as unknown.
func (s *Scheduler) oneByOne(node string) bool {
	r := s.recovery()
	if r != nil && r.singles.has(node) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.lists[node]
	return ok && l.version == 0
}

// unknownType reports whether err is a node's refusal of a message type
// it does not know.
func unknownType(err error) bool {
	var ne *bus.NackError
	return errors.As(err, &ne) && ne.Type == protocol.ErrorReplyType && ne.Code == protocol.ErrBadRequest &&
		strings.Contains(ne.Message, "unknown message type")
}

// askRestores asks node to host confs: one MAU_MCU_RESTORECONFS_REQ, or,
// for a node that knows only the per-conference request, one request per
// conference. The answer has a result per conference the node answered
// for; the error is the batch's, when the node answered none.
func (s *Scheduler) askRestores(ctx context.Context, node string, confs []protocol.Conference) (protocol.NodeConfsAck, error) {
	var ack protocol.NodeConfsAck
	if !s.oneByOne(node) {
		nctx, cancel := context.WithTimeout(ctx, s.opts.NodeTimeout)
		err := s.bus.Call(nctx, protocol.SubjectToNode(node), protocol.NodeConfsReq{Type: protocol.MAUMCURestoreConfsReq, Confs: confs}, &ack)
		cancel()
		if !unknownType(err) {
			return ack, err
		}
		s.log.Info("media node knows no batch restore: asking it one conference at a time", "node", node)
		if r := s.recovery(); r != nil {
			r.singles.mark(node)
		}
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		lastErr error
		sem     = make(chan struct{}, perConfAtOnce)
	)
	ack = protocol.NodeConfsAck{Type: protocol.MCURestoreConfsAck}
	for i := range confs {
		sem <- struct{}{}
		wg.Add(1)
		go func(c *protocol.Conference) {
			defer wg.Done()
			defer func() { <-sem }()
			var one protocol.NodeConfAck
			nctx, cancel := context.WithTimeout(ctx, s.opts.NodeTimeout)
			err := s.bus.Call(nctx, protocol.SubjectToNode(node), protocol.NodeConfReq{Type: protocol.MAUMCURestoreConfReq, Conf: *c}, &one)
			cancel()
			mu.Lock()
			defer mu.Unlock()
			var ne *bus.NackError
			switch {
			case err == nil:
				ack.IP, ack.PID = one.IP, one.PID
				ack.Results = append(ack.Results, protocol.NodeConfResult{E164: c.E164})
			case errors.As(err, &ne):
				ack.Results = append(ack.Results, protocol.NodeConfResult{E164: c.E164, ErrCode: ne.Code, ErrMsg: ne.Message})
			default:
				lastErr = err // not answered: left out of the results
			}
		}(&confs[i])
	}
	wg.Wait()
	if len(ack.Results) == 0 && lastErr != nil {
		return ack, lastErr
	}
	return ack, nil
}
