package sip

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// directory finds where conference numbers run: the registry (UPU) says
// which media node runs a conference now, RMS's node list says where that
// node takes SIP calls. The list is cached for Options.NodeCacheTTL, and
// asked again at once for a node it does not hold, so a conference that
// failed over to a node the cache has not seen is still reached.
type directory struct {
	n *Node

	refresh sync.Mutex // one node-list request at a time
	mu      sync.RWMutex
	nodes   map[string]protocol.NodeInfo
	at      time.Time
}

func newDirectory(n *Node) *directory { return &directory{n: n, nodes: map[string]protocol.NodeInfo{}} }

// errNoDirectory: the node has no bus to ask.
var errNoDirectory = errors.New("sip: no registry to ask")

// conference says where number e164 lives: found is false when the
// registry does not know it.
func (d *directory) conference(ctx context.Context, e164 string) (e protocol.RegistryEntry, found bool, err error) {
	if d.n.deps.Bus == nil {
		return e, false, errNoDirectory
	}
	ctx, cancel := context.WithTimeout(ctx, d.n.opts.BusTimeout)
	defer cancel()
	var ack protocol.RegistryQueryAck
	err = d.n.deps.Bus.Call(ctx, protocol.SubjectRegistry(d.n.opts.Platform), protocol.RegistryQuery{Type: protocol.UPUQueryReq, E164: e164}, &ack)
	var nack *bus.NackError
	if errors.As(err, &nack) && nack.Code == protocol.ErrNotFound {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("sip: registry of %s: %w", d.n.opts.Platform, err)
	}
	return ack.Entry, true, nil
}

// node returns what RMS says of a media node, asking RMS when the cache
// is old or does not hold the node; ok is false for a node RMS does not
// know.
func (d *directory) node(ctx context.Context, id string) (protocol.NodeInfo, bool, error) {
	d.mu.RLock()
	info, ok := d.nodes[id]
	fresh := d.n.now().Sub(d.at) < d.n.opts.NodeCacheTTL
	d.mu.RUnlock()
	if ok && fresh && info.State == protocol.NodeUp {
		return info, true, nil
	}
	asked := d.n.now()
	d.refresh.Lock()
	defer d.refresh.Unlock()
	d.mu.RLock()
	again := !d.at.Before(asked) // another request refreshed meanwhile
	info, ok = d.nodes[id]
	d.mu.RUnlock()
	if again {
		return info, ok, nil
	}
	if d.n.deps.Bus == nil {
		return info, false, errNoDirectory
	}
	ctx, cancel := context.WithTimeout(ctx, d.n.opts.BusTimeout)
	defer cancel()
	var ack protocol.NodeListAck
	if err := d.n.deps.Bus.Call(ctx, protocol.SubjectRMS(d.n.opts.Platform), protocol.Header{Type: protocol.RMSNodeListReq}, &ack); err != nil {
		return info, ok, fmt.Errorf("sip: RMS of %s: %w", d.n.opts.Platform, err)
	}
	nodes := make(map[string]protocol.NodeInfo, len(ack.Nodes))
	for _, x := range ack.Nodes {
		nodes[x.Node] = x
	}
	d.mu.Lock()
	d.nodes, d.at = nodes, d.n.now()
	d.mu.Unlock()
	info, ok = nodes[id]
	return info, ok, nil
}
