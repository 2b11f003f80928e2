package medianode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// Options configure a node. Zero values take the defaults given.
type Options struct {
	// ID is the node id, a valid subject token (protocol.ValidToken), e.g.
	// "sim-1". Required.
	ID string
	// IP is the address the node reports; default "127.0.0.1".
	IP string
	// PID is the process id the node reports; default a fresh random number
	// at every Start, so that a restarted node has a new pid.
	PID string
	// Room is the server-room moid the node sits in. Required.
	Room string
	// Platform is the platform moid, a valid subject token. Required.
	Platform string
	// Capacity is the most conferences the node hosts; default 1000.
	Capacity int
	// Legacy marks a legacy node (利旧): its conferences are never moved.
	Legacy bool
	// HeartbeatInterval defaults to 500 ms; RMS's register ACK replaces it
	// when it gives one.
	HeartbeatInterval time.Duration
	// ConfListInterval defaults to 5 s; likewise replaced by the ACK.
	ConfListInterval time.Duration
	// OldProtocol makes the node speak as nodes did before the batch
	// messages and versioned conference lists: it refuses
	// MAU_MCU_RESTORECONFS_REQ and MAU_MCU_RELEASECONFS_CMD as unknown and
	// sends every list whole, without a version.
	OldProtocol bool
	// SIPListen, when set, is the UDP address ("127.0.0.1:0") of the
	// node's SIP user agent server (sip.go), which answers calls to the
	// conferences it hosts; the node announces its contact to RMS.
	SIPListen string
}

const (
	defaultIP                = "127.0.0.1"
	defaultCapacity          = 1000
	defaultHeartbeatInterval = 500 * time.Millisecond
	defaultConfListInterval  = 5 * time.Second

	// registerRetry is the pause between registration attempts.
	registerRetry = 500 * time.Millisecond
	// registerTimeout bounds one registration request.
	registerTimeout = time.Second
	// handlerConcurrency is how many scheduler requests a node handles at
	// once: creates are request/reply, so a busy scheduler needs many.
	handlerConcurrency = 256
)

// Node is one media node. Its methods are safe for concurrent use.
//
// Lock order: life, then a session's gate, then mu. recv's lock is a leaf:
// it may be taken under any of them and takes none.
type Node struct {
	opts Options
	bus  *bus.Bus
	log  *slog.Logger

	fault atomic.Pointer[Fault]
	pid   atomic.Pointer[string]
	seq   atomic.Uint64 // mtreqid counter
	recv  receivedLog

	life sync.Mutex // serialises Start, Shutdown and Kill
	sess atomic.Pointer[session]
	sip  atomic.Pointer[sipUAS] // while started with Options.SIPListen

	mu    sync.Mutex // guards confs and list
	confs map[string]*conf
	list  listBook
}

// New checks opts, fills in defaults and returns a node that is not started.
// The node talks on b; giving each node its own connection lets a test
// simulate a node's lost bus connection by closing it.
func New(opts Options, b *bus.Bus, log *slog.Logger) (*Node, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: no bus connection", ErrBadOptions)
	}
	if !protocol.ValidToken(opts.ID) {
		return nil, fmt.Errorf("%w: id %q is not a valid subject token", ErrBadOptions, opts.ID)
	}
	if !protocol.ValidToken(opts.Platform) {
		return nil, fmt.Errorf("%w: platform %q is not a valid subject token", ErrBadOptions, opts.Platform)
	}
	if opts.Room == "" {
		return nil, fmt.Errorf("%w: node %s has no room", ErrBadOptions, opts.ID)
	}
	if opts.Capacity < 0 || opts.HeartbeatInterval < 0 || opts.ConfListInterval < 0 {
		return nil, fmt.Errorf("%w: node %s: capacity and intervals must not be negative", ErrBadOptions, opts.ID)
	}
	if opts.IP == "" {
		opts.IP = defaultIP
	}
	if opts.Capacity == 0 {
		opts.Capacity = defaultCapacity
	}
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = defaultHeartbeatInterval
	}
	if opts.ConfListInterval == 0 {
		opts.ConfListInterval = defaultConfListInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		opts:  opts,
		bus:   b,
		log:   log.With("node", opts.ID, "platform", opts.Platform, "room", opts.Room),
		confs: make(map[string]*conf),
		// Version 0 is a list without versions: start counting at 1.
		list: listBook{version: 1},
	}
	pid := opts.PID
	n.pid.Store(&pid)
	return n, nil
}

// ID is the node id.
func (n *Node) ID() string { return n.opts.ID }

// PID is the process id the node reports now, or reported last when it is
// stopped.
func (n *Node) PID() string { return *n.pid.Load() }

// IP is the address the node reports.
func (n *Node) IP() string { return n.opts.IP }

// Capacity is the most conferences the node hosts.
func (n *Node) Capacity() int { return n.opts.Capacity }

// Running reports whether the node is started.
func (n *Node) Running() bool { return n.sess.Load() != nil }

// Start subscribes to the node's subject and starts registering with RMS in
// the background, then beating and reporting conference lists once RMS has
// answered. It does not wait for RMS.
func (n *Node) Start(ctx context.Context) error {
	n.life.Lock()
	defer n.life.Unlock()
	if n.sess.Load() != nil {
		return ErrRunning
	}
	pid := n.opts.PID
	if pid == "" {
		pid = n.freshPID()
	}
	s := &session{
		n:    n,
		pid:  pid,
		done: make(chan struct{}),
	}
	s.mux = s.newMux()
	sub, err := n.bus.Subscribe(protocol.SubjectToNode(n.opts.ID), bus.HandlerFunc(s.serve), bus.Concurrent(handlerConcurrency))
	if err != nil {
		return fmt.Errorf("medianode: start %s: %w", n.opts.ID, err)
	}
	s.sub = sub
	// Once Start returns, the server knows the subscription: a request sent
	// right after reaches the node.
	if err := n.bus.Flush(ctx); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("medianode: start %s: %w", n.opts.ID, err)
	}
	if err := n.startSIP(); err != nil {
		_ = sub.Unsubscribe()
		return err
	}
	// The loops outlive Start's ctx: they stop at Shutdown or Kill.
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	n.pid.Store(&pid)
	n.sess.Store(s)
	go s.loop(loopCtx)
	n.log.Info("media node started", "pid", pid, "capacity", n.opts.Capacity, "legacy", n.opts.Legacy)
	return nil
}

// Shutdown stops the node gracefully: it stops taking requests, lets those
// in hand finish (replies still delayed by a fault are dropped), stops its
// loops, and tells RMS it leaves (MCU_RMS_UNREGISTER_NTF). Its conferences
// end with it. Shutting down a stopped node does nothing.
func (n *Node) Shutdown(ctx context.Context) error {
	n.life.Lock()
	defer n.life.Unlock()
	s := n.sess.Load()
	if s == nil {
		return nil
	}
	err := s.sub.Unsubscribe()
	s.close()
	s.cancel()
	select {
	case <-s.done:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	n.sess.Store(nil)
	n.stopSIP()
	n.dropConfs()
	if perr := n.bus.Publish(protocol.SubjectRMSNodes(n.opts.Platform), n.heartbeat(protocol.MCUUnregisterNtf, s.pid, 0)); perr != nil {
		err = errors.Join(err, perr)
	} else if ferr := n.bus.Flush(ctx); ferr != nil {
		err = errors.Join(err, ferr)
	}
	n.log.Info("media node shut down", "pid", s.pid)
	if err != nil {
		return fmt.Errorf("medianode: shutdown %s: %w", n.opts.ID, err)
	}
	return nil
}

// Kill stops the node as a crash would: at once, telling no one. Its
// conferences are lost. When Kill returns the node sends nothing more.
// Killing a stopped node does nothing.
func (n *Node) Kill() {
	n.life.Lock()
	defer n.life.Unlock()
	s := n.sess.Load()
	if s == nil {
		return
	}
	s.close()
	_ = s.sub.Unsubscribe()
	s.cancel()
	<-s.done
	n.sess.Store(nil)
	n.stopSIP()
	n.dropConfs()
	n.log.Info("media node killed", "pid", s.pid)
}

// freshPID draws a process id unlike the last one.
func (n *Node) freshPID() string {
	last := n.PID()
	for {
		pid := strconv.Itoa(1000 + rand.IntN(4_000_000))
		if pid != last {
			return pid
		}
	}
}

// running returns the current session or ErrNotRunning.
func (n *Node) running() (*session, error) {
	s := n.sess.Load()
	if s == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotRunning, n.opts.ID)
	}
	return s, nil
}

// heartbeat builds a heartbeat (or, with another type, the unregister
// notice) with the full registration info.
func (n *Node) heartbeat(typ, pid string, confs int) protocol.HeartbeatNtf {
	return protocol.HeartbeatNtf{
		Type:     typ,
		Node:     n.opts.ID,
		IP:       n.opts.IP,
		PID:      pid,
		Room:     n.opts.Room,
		Platform: n.opts.Platform,
		Kind:     "mcu",
		Legacy:   n.opts.Legacy,
		Confs:    confs,
		Capacity: n.opts.Capacity,
		SIP:      n.SIPContact(),
	}
}

// session is one run of a node, from Start to Shutdown or Kill. A restarted
// node gets a new session, with a new pid.
type session struct {
	n   *Node
	pid string
	mux *bus.Mux
	// handled are the types mux has handlers for; the others are logged in
	// Received by serve, then refused by mux.
	handled map[string]bool
	// listMu keeps conference lists in the order they were made.
	listMu sync.Mutex
	sub    *bus.Subscription
	cancel context.CancelFunc
	done   chan struct{} // closed when loop returns

	// gate lets handlers run (read-locked) until the session closes: close
	// takes it for writing, so once close returns no handler and no delayed
	// reply sends anything.
	gate   sync.RWMutex
	closed bool
}

// serve is the subscription's handler: it lets the message through the gate.
func (s *session) serve(ctx context.Context, m *bus.Msg) {
	s.gate.RLock()
	defer s.gate.RUnlock()
	if s.closed {
		return
	}
	if !s.handled[m.Type] {
		s.n.recv.add(m.Type, "")
	}
	s.mux.ServeMsg(ctx, m)
}

// close shuts the gate, waiting for handlers in progress.
func (s *session) close() {
	s.gate.Lock()
	s.closed = true
	s.gate.Unlock()
}

// loop registers until RMS ACKs, sends the first conference list, then
// beats and reports conference lists until ctx ends.
func (s *session) loop(ctx context.Context) {
	defer close(s.done)
	n := s.n
	ack, ok := s.register(ctx)
	if !ok {
		return
	}
	beat, list := n.opts.HeartbeatInterval, n.opts.ConfListInterval
	if ack.HeartbeatIntervalMs > 0 {
		beat = time.Duration(ack.HeartbeatIntervalMs) * time.Millisecond
	}
	if ack.ConfListIntervalMs > 0 {
		list = time.Duration(ack.ConfListIntervalMs) * time.Millisecond
	}
	n.log.Info("media node registered", "pid", s.pid, "heartbeat", beat, "conflist", list)
	_ = s.sendConfList(true)
	beatT, listT := time.NewTicker(beat), time.NewTicker(list)
	defer beatT.Stop()
	defer listT.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beatT.C:
			if f := n.fault.Load(); f != nil && f.NoHeartbeat {
				continue
			}
			if err := n.bus.Publish(protocol.SubjectRMSNodes(n.opts.Platform), n.heartbeat(protocol.MCUHeartbeatNtf, s.pid, n.confCount())); err != nil {
				n.log.Debug("heartbeat not sent", "err", err)
			}
		case <-listT.C:
			_ = s.sendConfList(false)
		}
	}
}

// register asks RMS to take the node until it ACKs, every registerRetry.
// It returns false when ctx ends first.
func (s *session) register(ctx context.Context) (protocol.RegisterAck, bool) {
	n := s.n
	req := protocol.RegisterReq{
		Type:     protocol.MCURegisterReq,
		Node:     n.opts.ID,
		IP:       n.opts.IP,
		PID:      s.pid,
		Room:     n.opts.Room,
		Platform: n.opts.Platform,
		Capacity: n.opts.Capacity,
		Legacy:   n.opts.Legacy,
		Kind:     "mcu",
		SIP:      n.SIPContact(),
	}
	lastCode := ""
	for {
		var ack protocol.RegisterAck
		rctx, cancel := context.WithTimeout(ctx, registerTimeout)
		err := n.bus.Call(rctx, protocol.SubjectRMSNodes(n.opts.Platform), req, &ack)
		cancel()
		if err == nil {
			return ack, true
		}
		if ctx.Err() != nil {
			return ack, false
		}
		var nack *bus.NackError
		if errors.As(err, &nack) {
			// Say it once per kind of refusal, not every retry.
			if nack.Code != lastCode {
				n.log.Warn("RMS refused registration; retrying", "code", nack.Code, "msg", nack.Message)
				lastCode = nack.Code
			}
		} else {
			n.log.Debug("registration not answered; retrying", "err", err)
		}
		t := time.NewTimer(registerRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return ack, false
		case <-t.C:
		}
	}
}

// SimIP is the loopback address simulated node n reports: 127.0.1.n for
// the first 254, then 127.2.0.0 onwards, one address per node, so that
// any count of nodes has valid, distinct addresses.
func SimIP(n int) string {
	if n >= 1 && n <= 254 {
		return fmt.Sprintf("127.0.1.%d", n)
	}
	x := max(n, 0)
	return fmt.Sprintf("127.%d.%d.%d", 2+(x>>16)%250, (x>>8)&255, x&255)
}
