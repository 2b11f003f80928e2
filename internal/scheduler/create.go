package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

func (s *Scheduler) handleCreate(ctx context.Context, m *bus.Msg) {
	var req protocol.CreateConfReq
	if err := m.Decode(&req); err != nil {
		_ = m.Nack(protocol.MAUCreateConfNack, protocol.ErrBadRequest, err.Error())
		return
	}
	conf, err := s.Create(ctx, req)
	if err != nil {
		e := asError(err)
		_ = m.Respond(protocol.Nack{Type: protocol.MAUCreateConfNack, E164: req.E164, ErrCode: e.Code, ErrMsg: e.Message})
		return
	}
	_ = m.Respond(protocol.CreateConfAck{Type: protocol.MAUCreateConfAck, Conf: conf})
}

func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return fail(protocol.ErrInternal, err, "%v", err)
}

// Create books a conference now (SPEC §3): platform check, licence checked
// and counted with the number taken and the conference written as creating
// (one atomic store step), RMS for nodes, the node with the fewest
// conferences, the node's ACK, then running. Every refusal gives back what
// the create took.
func (s *Scheduler) Create(ctx context.Context, req protocol.CreateConfReq) (protocol.Conference, error) {
	start := time.Now()
	conf, err := s.create(ctx, req)
	s.m.createTime.Observe(time.Since(start).Seconds())
	if err != nil {
		s.m.creates.WithLabelValues(Code(err)).Inc()
		s.log.Debug("create refused", "domain", req.Domain, "e164", req.E164, "err", err)
		return protocol.Conference{}, err
	}
	s.m.creates.WithLabelValues("ok").Inc()
	return conf, nil
}

func (s *Scheduler) create(ctx context.Context, req protocol.CreateConfReq) (protocol.Conference, error) {
	if !s.lease.held() {
		return protocol.Conference{}, fail(protocol.ErrSchedulerDown, nil, "this scheduler instance did not renew its lease in time and may no longer be the active one; retry, the active instance takes it")
	}
	class, err := s.validateCreate(&req)
	if err != nil {
		return protocol.Conference{}, err
	}
	dom, ok := s.cfg.DomainByMoid(req.Domain)
	if !ok {
		return protocol.Conference{}, fail(protocol.ErrDomainNotFound, nil, "no user domain %q; list domains in the topology configuration", req.Domain)
	}
	if !s.dr.serves(dom.Platform) {
		if dom.Platform == s.opts.Platform {
			return protocol.Conference{}, fail(protocol.ErrPlatformNotServed, nil, "platform %q is switched over to its backup platforms; book there", dom.Platform)
		}
		return protocol.Conference{}, fail(protocol.ErrPlatformNotServed, nil, "domain %q belongs to platform %q, which this scheduler (platform %q) does not serve now", dom.Moid, dom.Platform, s.opts.Platform)
	}
	st := s.dr.storeOf(dom.Platform)
	if st == nil {
		return protocol.Conference{}, fail(protocol.ErrPlatformNotServed, nil, "platform %q's store is not reachable from here", dom.Platform)
	}
	src, _ := s.cfg.PlatformByMoid(dom.Platform)
	now := time.Now()
	conf := protocol.Conference{
		E164: req.E164, Name: req.Name, Domain: req.Domain, Platform: dom.Platform, RealPlatform: s.opts.Platform,
		Scale: req.Scale, Resolution: req.Resolution, Password: req.Password, Public: req.Public,
		Invited: req.Invited, Recording: req.Recording, BookTime: req.BookTime, DurationMinutes: req.DurationMinutes,
		EndTime: now.Add(time.Duration(req.DurationMinutes) * time.Minute).UnixMilli(),
	}
	// RMS is asked while the licence is reserved: its offer changes
	// nothing, and it is used only once the reservation holds. A licence
	// refusal wins over an RMS one, as if asked in turn.
	pending, err := st.StartReserve(ctx, store.Reservation{
		Conf: conf, Class: class,
		Numbering: store.Numbering{Platform: src.Moid, Segment: src.NumberSegment, Digits: src.E164Digits},
	})
	if err != nil {
		return protocol.Conference{}, storeError(req.E164, err)
	}
	res, rmsErr := s.resources(ctx, req)
	e164, err := pending.Wait()
	if err != nil {
		return protocol.Conference{}, storeError(req.E164, err)
	}
	conf.E164 = e164
	conf.CreateTime = now.UnixMilli()
	conf.State = protocol.StateCreating
	s.inflight.set(e164, true)
	defer s.inflight.set(e164, false)

	if rmsErr != nil {
		s.undoReserve(st, e164)
		return protocol.Conference{}, rmsErr
	}
	node, ok := s.loads.pick(res.MCU)
	if !ok {
		s.undoReserve(st, e164)
		return protocol.Conference{}, fail(protocol.ErrNoResources, nil, "RMS offered no media node for domain %q that has room and answers; wait for the nodes to recover or add one", req.Domain)
	}
	ack, node, err := s.place(ctx, &conf, res, req.Recording, node)
	if s.dead.Load() {
		return protocol.Conference{}, fail(protocol.ErrSchedulerDown, nil, "the scheduler stopped")
	}
	if err != nil {
		s.undoReserve(st, e164)
		return protocol.Conference{}, err
	}
	if _, err := st.Commit(ctx, store.Placement{
		E164: e164, Node: node.Node, IP: ack.IP, PID: ack.PID, Room: node.Room, RealPlatform: s.opts.Platform,
	}); err != nil {
		s.loads.add(node.Node, -1)
		s.letGo(node.Node, e164)
		s.undoReserve(st, e164)
		return protocol.Conference{}, storeError(e164, err)
	}
	s.hosts(node.Node, e164)
	s.ctl.add(e164, dom.Platform)
	conf.State = protocol.StateRunning
	conf.NodeIP, conf.NodePID = ack.IP, ack.PID
	conf.RealStartTime = conf.CreateTime
	s.reportRunning(&conf)
	return conf, nil
}

// place asks node to host the conference (MAU_MCU_CREATECONF_REQ). When
// the node does not answer in time or refuses, the conference is asked of
// one other node of RMS's offer, the least loaded of those that have not
// gone silent, and the create fails only if that one fails too (with that
// node's error). A NACK is a definite refusal, so
// nothing is left behind on the node that sent it and any other node may be
// tried; a node that did not answer may have created the conference after
// all, so it is told to let it go (and it only ever reaches the store
// through this create's single commit, for the node that answered). Each
// try is bounded by NodeTimeout and by ctx: a create takes at most
// RMSTimeout plus two NodeTimeouts, which the API's request timeout covers
// with the defaults.
func (s *Scheduler) place(ctx context.Context, conf *protocol.Conference, res protocol.GetResAck, recording bool, node protocol.Server) (protocol.NodeConfAck, protocol.Server, error) {
	for try := 1; ; try++ {
		conf.Room, conf.Node = node.Room, node.Node
		var ack protocol.NodeConfAck
		nctx, cancel := context.WithTimeout(ctx, s.opts.NodeTimeout)
		err := s.bus.Call(nctx, protocol.SubjectToNode(node.Node),
			protocol.NodeConfReq{Type: protocol.MAUMCUCreateConfReq, Conf: *conf, VRS: first(res.VRS, recording), MPS: res.MPS}, &ack)
		cancel()
		if err == nil || s.dead.Load() {
			return ack, node, err
		}
		s.loads.add(node.Node, -1)
		if !isNack(err) {
			s.nodeSilent(node.Node, conf.E164)
		}
		nerr := nodeError(node.Node, err)
		if try == 2 || ctx.Err() != nil {
			return ack, node, nerr
		}
		next, ok := s.loads.pickOther(res.MCU, node.Node)
		if !ok {
			return ack, node, nerr
		}
		s.log.Info("create tried on another node", "e164", conf.E164, "failed", node.Node, "code", nerr.Code, "next", next.Node)
		s.m.op("create-retry", nerr)
		node = next
	}
}

// resources asks RMS which nodes may take the conference (GET_RES_REQ).
// Creates that ask the same question while a request for it is on its way
// share that request's answer (offerFlights): under load most creates
// then cost RMS and the bus nothing, and no answer is older than one
// round trip to RMS. The answer is shared: read it, never change it.
func (s *Scheduler) resources(ctx context.Context, req protocol.CreateConfReq) (protocol.GetResAck, error) {
	q := protocol.GetResReq{
		Type: protocol.RMSGetResReq, Domain: req.Domain, Scale: req.Scale, Resolution: req.Resolution, Recording: req.Recording,
	}
	ack, err := s.offers.ask(ctx, q, func(rctx context.Context) (protocol.GetResAck, error) {
		var ack protocol.GetResAck
		rctx, cancel := context.WithTimeout(rctx, s.opts.RMSTimeout)
		defer cancel()
		err := s.bus.Call(rctx, protocol.SubjectRMS(s.opts.Platform), q, &ack)
		return ack, err
	})
	var ne *bus.NackError
	switch {
	case errors.As(err, &ne) && ne.Code == protocol.ErrNoResources:
		return ack, fail(protocol.ErrNoResources, err, "no media node can take it: %s", ne.Message)
	case errors.As(err, &ne):
		return ack, fail(protocol.ErrRMSError, err, "RMS refused: %s %s", ne.Code, ne.Message)
	case errors.Is(err, bus.ErrTimeout), errors.Is(err, bus.ErrNoResponders):
		return ack, fail(protocol.ErrRMSTimeout, err, "the resource manager of platform %q did not answer", s.opts.Platform)
	case err != nil:
		return ack, fail(protocol.ErrRMSError, err, "asking RMS failed: %v", err)
	}
	if len(ack.MCU) == 0 {
		return ack, fail(protocol.ErrNoResources, nil, "RMS offered no media node")
	}
	return ack, nil
}

// offerFlights shares one RMS request among the creates that ask the same
// question at the same time. The request runs on a context of its own,
// bounded by RMSTimeout, so that the create that sent it giving up does
// not fail the others; each waits for the answer as long as its own
// context allows. The zero value is ready to use.
type offerFlights struct {
	mu      sync.Mutex
	pending map[offerKey]*offerFlight
}

// offerKey is what an offer depends on.
type offerKey struct {
	domain, resolution string
	scale              int
	recording          bool
}

type offerFlight struct {
	done   chan struct{}
	askers int // under offerFlights.mu
	ack    protocol.GetResAck
	err    error
}

// ask answers q with the answer of the request for it now on its way, or
// sends one with call.
func (o *offerFlights) ask(ctx context.Context, q protocol.GetResReq, call func(context.Context) (protocol.GetResAck, error)) (protocol.GetResAck, error) {
	k := offerKey{domain: q.Domain, resolution: q.Resolution, scale: q.Scale, recording: q.Recording}
	o.mu.Lock()
	f, joined := o.pending[k]
	if !joined {
		f = &offerFlight{done: make(chan struct{})}
		if o.pending == nil {
			o.pending = make(map[offerKey]*offerFlight)
		}
		o.pending[k] = f
	}
	f.askers++
	o.mu.Unlock()
	if !joined {
		go func() {
			f.ack, f.err = call(context.Background())
			o.mu.Lock()
			delete(o.pending, k)
			o.mu.Unlock()
			close(f.done)
		}()
	}
	select {
	case <-f.done:
		return f.ack, f.err
	case <-ctx.Done():
		return protocol.GetResAck{}, fmt.Errorf("%w (%w)", bus.ErrTimeout, ctx.Err())
	}
}

// undoReserve gives back what Reserve took, with a context of its own: the
// caller's may be the reason for the undo.
func (s *Scheduler) undoReserve(st *store.Store, e164 string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := st.Release(ctx, e164, store.ReleaseCond{State: protocol.StateCreating}); err != nil && !errors.Is(err, store.ErrConfNotFound) {
		s.log.Error("could not give back a refused create; the end-time check will", "e164", e164, "err", err)
	}
}

// tellNode sends a node a message that needs no answer.
func (s *Scheduler) tellNode(node string, v any) {
	if err := s.bus.Publish(protocol.SubjectToNode(node), v); err != nil {
		s.log.Warn("could not reach node", "node", node, "err", err)
	}
}

func isNack(err error) bool {
	var ne *bus.NackError
	return errors.As(err, &ne)
}

// first keeps the first server of a list (the seed: "多个则取第一个"), or
// none when not wanted.
func first(l []protocol.Server, want bool) []protocol.Server {
	if !want || len(l) == 0 {
		return nil
	}
	return l[:1]
}
