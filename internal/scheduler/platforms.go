package scheduler

import (
	"context"
	"fmt"

	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// What the scheduler does as platform states change (peers.go keeps the
// service list and calls these, as peerEvents).

// locate finds the store that holds a conference.
func (s *Scheduler) locate(ctx context.Context, e164 string) (where, error) {
	home := s.ctl.home(e164)
	w, ok := s.dr.locate(ctx, e164, home)
	if !ok {
		return where{}, fail(protocol.ErrConfNotFound, store.ErrConfNotFound, "no conference %s", e164)
	}
	if w.platform != home {
		s.ctl.learn(e164, w.platform)
	}
	return w, nil
}

// notifyCMOf publishes a notification for the CM of a conference of
// platform (meeting.mccntf).
func (s *Scheduler) notifyCMOf(platform string, v any) {
	if err := s.dr.cmBus(platform).Publish(protocol.SubjectCMNotifications, v); err != nil {
		s.log.Warn("could not notify the CM", "platform", platform, "err", err)
	}
}

// connected serves conference control on a master's bus and publishes its
// domains to its store.
func (s *Scheduler) connected(ctx context.Context, info protocol.PlatformInfo, p Peer) {
	if err := s.ctl.addPeer(info.Platform, p.Bus); err != nil {
		s.log.Warn("cannot serve conference control on a master platform's bus", "platform", info.Platform, "err", err)
	}
	_ = s.publishDomainsOf(ctx, info.Platform, p.Store)
}

// failover takes over a failed master (000 §2.3.1): its conferences that
// ran there become pending-restore and are restored here; its templates are
// reported to this registry.
func (s *Scheduler) failover(ctx context.Context, platform string) {
	st := s.dr.storeOf(platform)
	if st == nil || s.dead.Load() {
		return
	}
	s.log.Warn("master platform failed: taking over its conferences", "platform", platform)
	// Its tenants' lists say which conferences run; only those are read.
	var running []string
	for _, d := range s.cfg.Domains {
		if d.Platform != platform {
			continue
		}
		states, err := st.DomainStates(ctx, d.Moid)
		if err != nil {
			s.log.Error("could not read the failed platform's conferences", "platform", platform, "domain", d.Moid, "err", err)
			continue
		}
		for e, state := range states {
			if state == protocol.StateRunning {
				running = append(running, e)
			}
		}
	}
	briefs, err := st.Brief(ctx, running)
	if err != nil {
		s.log.Error("could not read the failed platform's conferences", "platform", platform, "err", err)
		return
	}
	byNode := map[string][]string{}
	for e, c := range briefs {
		if c.State == protocol.StateRunning && c.RealPlatform == platform && !c.Legacy {
			byNode[c.Node] = append(byNode[c.Node], e)
		}
	}
	reason := fmt.Sprintf("platform %s failed", platform)
	moved := 0
	for node, e164s := range byNode {
		m, _, err := st.Pend(ctx, node, reason, e164s, func(int) { s.kickRestore() })
		if err != nil {
			s.log.Error("could not mark the failed platform's conferences pending-restore", "platform", platform, "err", err)
		}
		moved += len(m)
		for _, e := range m {
			s.notifyCM(protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: e, State: protocol.StatePendingRestore, Reason: reason})
		}
	}
	s.reportDirectoryOf(ctx, platform)
	s.log.Warn("failed platform's conferences pending restore here", "platform", platform, "conferences", moved)
	s.kickRestore()
}

// failback hands a recovered master its service back (000 §2.3.3): its
// conferences still running here keep running, controlled from its bus and
// reporting to its CM; its pending ones are its own scheduler's again.
func (s *Scheduler) failback(ctx context.Context, platform string) {
	s.log.Info("master platform recovered: it serves its own again", "platform", platform)
	s.forgetDirectoryOf(ctx, platform)
}

// standDown lets go of the control of this platform's own conferences when
// it is switched over: its backups restore them and answer their control
// on this platform's bus, and until then this scheduler answers as the
// platform queue, from the store. Holding them would answer (or apply) a
// request twice.
// Its registry forgets its bookings meanwhile (000 §7.2).
func (s *Scheduler) standDown() {
	s.ctl.dropOwn()
	if s.records != nil {
		s.forgetDirectoryOf(context.Background(), s.opts.Platform)
	}
}

// serveAgain takes back the control of the conferences that still run on
// this platform when it serves again (those its backups run keep theirs
// there), and restores what waits.
func (s *Scheduler) serveAgain(ctx context.Context) {
	confs, err := s.store.AllConferences(ctx)
	if err != nil {
		s.log.Warn("could not read conferences to take back their control", "err", err)
	} else {
		for _, c := range confs {
			if c.RealPlatform != s.opts.Platform || (c.State == protocol.StateCreating && c.Node == "") {
				continue
			}
			s.ctl.add(c.E164, s.opts.Platform)
		}
	}
	if s.records != nil {
		s.reportDirectoryOf(ctx, s.opts.Platform)
	}
	s.kickRestore()
}
