package drill

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/convene/convene/internal/audit"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// observer reads a platform that runs in other processes the way its
// operator could: the store (the real redis-server), RMS's node list and
// the media nodes' own conference lists over the bus. It joins the bus
// with the schedulers' credential, which may ask RMS and the nodes and
// read what nodes report; it changes nothing but asks nodes for whole
// lists, as a scheduler that just became active does.
type observer struct {
	platform string
	domains  []string
	bus      *bus.Bus
	store    *store.Store
	sub      *bus.Subscription

	mu    sync.Mutex
	lists map[string]nodeList // node id → its newest whole list
}

// nodeList is one whole conference list a node sent.
type nodeList struct {
	sentMs int64
	confs  []string
}

// listWait bounds how long a snapshot waits for the nodes' lists.
const listWait = 3 * time.Second

func newObserver(ctx context.Context, busURL, credsFile, storeURL, platform string, domains []string) (*observer, error) {
	b, err := bus.Connect(bus.Options{URL: busURL, CredsFile: credsFile, Role: bus.RoleScheduler, Name: "drill-observer",
		RetryOnFailedConnect: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("drill: the observer's bus connection: %w", err)
	}
	st, err := store.Open(ctx, store.Options{URL: storeURL, PoolSize: 4}, nil)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("drill: the observer's store connection: %w", err)
	}
	o := &observer{platform: platform, domains: domains, bus: b, store: st, lists: map[string]nodeList{}}
	o.sub, err = b.Subscribe(protocol.SubjectFromNodes(platform), bus.HandlerFunc(o.onNodeMsg))
	if err != nil {
		o.close()
		return nil, fmt.Errorf("drill: the observer's subscription: %w", err)
	}
	return o, nil
}

func (o *observer) close() {
	if o.sub != nil {
		_ = o.sub.Unsubscribe()
	}
	o.bus.Close()
	_ = o.store.Close()
}

func (o *observer) onNodeMsg(_ context.Context, m *bus.Msg) {
	if m.Type != protocol.MCUConfListNtf {
		return
	}
	var ntf protocol.ConfListNtf
	if err := m.Decode(&ntf); err != nil || ntf.Delta {
		return
	}
	l := nodeList{sentMs: ntf.SentAtMs, confs: make([]string, len(ntf.Confs))}
	for i, c := range ntf.Confs {
		l.confs[i] = c.E164
	}
	o.mu.Lock()
	if cur, ok := o.lists[ntf.Node]; !ok || cur.sentMs <= l.sentMs {
		o.lists[ntf.Node] = l
	}
	o.mu.Unlock()
}

// errIncomplete means a snapshot could not see everything it needs: a
// node that runs did not send its list in time, RMS or the store did not
// answer. A settling drill tries again.
var errIncomplete = errors.New("incomplete view")

// snapshot is the platform at one moment.
type snapshot struct {
	// Live is RMS's view of the nodes; Hosted what each running node
	// reported hosting.
	Live   map[string]bool
	Hosted map[string][]string
	// Running and Waiting are the store's conferences of the drill's
	// tenants: running by identity, the others by state.
	Running Census
	Waiting map[string]string
	Report  audit.Report
}

// Copies counts, per number, the live nodes hosting it.
func (s snapshot) Copies() map[string]int {
	out := map[string]int{}
	for node, l := range s.Hosted {
		if !s.Live[node] {
			continue
		}
		for _, e := range l {
			out[e]++
		}
	}
	return out
}

// take reads a snapshot. nodes are the ids of the node processes that run
// now: each must report its list within listWait.
func (o *observer) take(ctx context.Context, nodes []string) (snapshot, error) {
	var s snapshot
	live, err := o.liveNodes(ctx)
	if err != nil {
		return s, err
	}
	hosted, err := o.hosted(ctx, nodes)
	if err != nil {
		return s, err
	}
	s.Live, s.Hosted = live, hosted
	if s.Running, s.Waiting, err = o.census(ctx); err != nil {
		return s, err
	}
	s.Report, err = audit.Check(ctx, o.store, audit.Input{Platform: o.platform, Domains: o.domains, Live: live, Hosted: hosted})
	if err != nil {
		return s, fmt.Errorf("%w: the audit read the store: %w", errIncomplete, err)
	}
	return s, nil
}

// liveNodes is RMS's view: node id → up.
func (o *observer) liveNodes(ctx context.Context) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var ack protocol.NodeListAck
	if err := o.bus.Call(ctx, protocol.SubjectRMS(o.platform), protocol.Header{Type: protocol.RMSNodeListReq}, &ack); err != nil {
		return nil, fmt.Errorf("%w: RMS's node list: %w", errIncomplete, err)
	}
	out := make(map[string]bool, len(ack.Nodes))
	for _, n := range ack.Nodes {
		out[n.Node] = n.State == protocol.NodeUp
	}
	return out, nil
}

// hosted asks each node for its whole list and waits for every answer.
func (o *observer) hosted(ctx context.Context, nodes []string) (map[string][]string, error) {
	since := time.Now().UnixMilli()
	for _, id := range nodes {
		if err := o.bus.Publish(protocol.SubjectToNode(id), protocol.GetConfListCmd{Type: protocol.MAUMCUGetConfListCmd}); err != nil {
			return nil, fmt.Errorf("%w: ask node %s for its list: %w", errIncomplete, id, err)
		}
	}
	deadline := time.Now().Add(listWait)
	for {
		out, missing := o.listsSince(nodes, since)
		if missing == "" {
			return out, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("%w: node %s sent no conference list within %s", errIncomplete, missing, listWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (o *observer) listsSince(nodes []string, since int64) (map[string][]string, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string][]string, len(nodes))
	for _, id := range nodes {
		l, ok := o.lists[id]
		if !ok || l.sentMs < since {
			return nil, id
		}
		out[id] = l.confs
	}
	return out, ""
}

// census reads the store's conferences of the drill's tenants.
func (o *observer) census(ctx context.Context) (Census, map[string]string, error) {
	confs, err := o.store.AllConferences(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the store's conferences: %w", errIncomplete, err)
	}
	keep := map[string]bool{}
	for _, d := range o.domains {
		keep[d] = true
	}
	running, waiting := Census{}, map[string]string{}
	for _, c := range confs {
		if !keep[c.Domain] {
			continue
		}
		if c.State != protocol.StateRunning {
			waiting[c.E164] = c.State
			continue
		}
		running[c.E164] = identOf(c)
	}
	return running, waiting, nil
}

// leaseKey is the store key of the platform's scheduler lease
// (internal/store/keys.go), whose holder field names the active scheduler.
func leaseKey(platform string) string { return "platform/" + platform + "/scheduler-lease" }

// activeScheduler is the id of the scheduler holding a lease that has not
// run out (by the store's clock), "" when none does.
func (o *observer) activeScheduler(ctx context.Context) (string, error) {
	rdb := o.store.Client()
	v, err := rdb.HMGet(ctx, leaseKey(o.platform), "holder", "until").Result()
	if err != nil {
		return "", err
	}
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		return "", err
	}
	holder, _ := v[0].(string)
	untilText, _ := v[1].(string)
	until, _ := strconv.ParseInt(untilText, 10, 64)
	if holder == "" || until <= now.UnixMilli() {
		return "", nil
	}
	return holder, nil
}
