package medianode

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/convene/convene/internal/protocol"
)

// Hosted is a conference a node hosts, as Conferences reports it.
type Hosted struct {
	E164     string
	Name     string
	Password string
	// CreateTime is when the node began hosting it (Unix ms); an idempotent
	// retry of the create keeps it.
	CreateTime int64
	// EndTime (Unix ms) and DurationMinutes are what the scheduler last
	// said, or what the node's own delay request got.
	EndTime         int64
	DurationMinutes int
	// WillEndNotified is set once the scheduler said it is about to end.
	WillEndNotified bool
	// Monitors are the ip:port of its monitoring sessions, sorted.
	Monitors []string
}

// conf is a hosted conference; guarded by Node.mu.
type conf struct {
	name       string
	password   string
	createTime int64
	endTime    int64
	duration   int
	willEnd    bool
	monitors   []string
}

// Conferences lists what the node hosts now, by e164.
func (n *Node) Conferences() []Hosted {
	n.mu.Lock()
	out := make([]Hosted, 0, len(n.confs))
	for e164, c := range n.confs {
		out = append(out, Hosted{
			E164:            e164,
			Name:            c.name,
			Password:        c.password,
			CreateTime:      c.createTime,
			EndTime:         c.endTime,
			DurationMinutes: c.duration,
			WillEndNotified: c.willEnd,
			Monitors:        slices.Sorted(slices.Values(c.monitors)),
		})
	}
	n.mu.Unlock()
	slices.SortFunc(out, func(a, b Hosted) int { return strings.Compare(a.E164, b.E164) })
	return out
}

// Numbers lists the e164 of every conference the node hosts now, in no
// order: cheaper than Conferences for a node hosting many.
func (n *Node) Numbers() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.confs))
	for e164 := range n.confs {
		out = append(out, e164)
	}
	return out
}

// Hosts reports whether the node hosts the conference.
func (n *Node) Hosts(e164 string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.confs[e164]
	return ok
}

// Inject makes the node host a conference the scheduler never asked for, as
// if it had been created behind the scheduler's back (to test
// reconciliation). A zero createTime means now. It ignores capacity and
// replaces a conference of the same number.
func (n *Node) Inject(e164 string, createTime int64) {
	if createTime == 0 {
		createTime = time.Now().UnixMilli()
	}
	n.mu.Lock()
	if old, ok := n.confs[e164]; ok {
		n.list.removed(e164, old.createTime)
	}
	n.confs[e164] = &conf{createTime: createTime}
	n.list.added(e164, createTime)
	n.mu.Unlock()
}

// End ends a conference on the node's own account (its chair ended it): the
// node stops hosting it and tells the scheduler (MCU_MAU_RELEASECONF_NTF,
// reason "ended-on-node").
func (n *Node) End(e164 string) error {
	s, err := n.running()
	if err != nil {
		return err
	}
	if !n.release(e164) {
		return fmt.Errorf("%w: %s on %s", ErrNotHosted, e164, n.opts.ID)
	}
	return s.publishReleased(e164, "ended-on-node")
}

// Forget drops a conference without telling anyone, as a node that lost
// it in a fault would; only its next conference list shows it is gone.
func (n *Node) Forget(e164 string) bool { return n.release(e164) }

// ReportConfList sends the conference list (MCU_MAU_CONFLIST_NTF) now,
// besides the periodic ones: what changed since the version the scheduler
// acknowledged, or the whole list when it acknowledged none.
func (n *Node) ReportConfList() error {
	s, err := n.running()
	if err != nil {
		return err
	}
	return s.sendConfList(false)
}

// host starts hosting a conference unless the node is full. Hosting one it
// already hosts changes nothing (a retried create) and is not refused.
func (n *Node) host(e164, name, password string, endTime int64, duration int) (full bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hostLocked(e164, name, password, endTime, duration)
}

// hostLocked is host with n.mu held.
func (n *Node) hostLocked(e164, name, password string, endTime int64, duration int) (full bool) {
	if _, ok := n.confs[e164]; ok {
		return false
	}
	if len(n.confs) >= n.opts.Capacity {
		return true
	}
	c := &conf{
		name:       name,
		password:   password,
		createTime: time.Now().UnixMilli(),
		endTime:    endTime,
		duration:   duration,
	}
	n.confs[e164] = c
	n.list.added(e164, c.createTime)
	return false
}

// release stops hosting a conference and reports whether it was hosted.
func (n *Node) release(e164 string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.releaseLocked(e164)
}

// releaseLocked is release with n.mu held.
func (n *Node) releaseLocked(e164 string) bool {
	c, ok := n.confs[e164]
	if !ok {
		return false
	}
	delete(n.confs, e164)
	n.list.removed(e164, c.createTime)
	return true
}

// update applies f to a hosted conference and reports whether it was
// hosted.
func (n *Node) update(e164 string, f func(c *conf)) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.confs[e164]
	if ok {
		f(c)
	}
	return ok
}

func (n *Node) confCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.confs)
}

// dropConfs forgets every conference: the node process is gone.
func (n *Node) dropConfs() {
	n.mu.Lock()
	clear(n.confs)
	n.list.reset()
	n.mu.Unlock()
}

// publishReleased publishes MCU_MAU_RELEASECONF_NTF.
func (s *session) publishReleased(e164, reason string) error {
	n := s.n
	ntf := protocol.NodeReleaseNtf{
		Type:   protocol.MCUReleaseConfNtf,
		E164:   e164,
		Node:   n.opts.ID,
		IP:     n.opts.IP,
		PID:    s.pid,
		Reason: reason,
	}
	if err := n.bus.Publish(protocol.SubjectFromNodes(n.opts.Platform), ntf); err != nil {
		n.log.Debug("release notice not sent", "e164", e164, "err", err)
		return fmt.Errorf("medianode: %s: release notice for %s: %w", n.opts.ID, e164, err)
	}
	return nil
}
