package scheduler

import (
	"context"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// The registry (UPU) learns where every callable number lives (000 §7).

func (s *Scheduler) report(typ string, e protocol.RegistryEntry) {
	e.UpdatedMs = time.Now().UnixMilli()
	if err := s.bus.Publish(protocol.SubjectRegistry(s.opts.Platform), protocol.RegistryNtf{Type: typ, Reporter: s.opts.Platform, Entry: e}); err != nil {
		s.log.Warn("could not report to the registry", "e164", e.E164, "err", err)
	}
}

func runningEntry(c *protocol.Conference) protocol.RegistryEntry {
	return protocol.RegistryEntry{
		E164: c.E164, Kind: protocol.EntryInstant, Name: c.Name, Domain: c.Domain, Platform: c.Platform,
		RealPlatform: c.RealPlatform, Room: c.Room, Node: c.Node, NodeIP: c.NodeIP,
	}
}

func (s *Scheduler) reportRunning(c *protocol.Conference) {
	s.report(protocol.UPUConfAddNtf, runningEntry(c))
}

func (s *Scheduler) reportName(c *protocol.Conference, name string) {
	if c.State != protocol.StateRunning {
		return
	}
	cc := *c
	cc.Name = name
	s.reportRunning(&cc)
}

func (s *Scheduler) reportEnded(c *protocol.Conference) {
	s.report(protocol.UPUConfDelNtf, protocol.RegistryEntry{E164: c.E164, Kind: protocol.EntryInstant})
}

func templateEntry(t *protocol.Template, real string) protocol.RegistryEntry {
	return protocol.RegistryEntry{E164: t.E164, Kind: protocol.EntryTemplate, Name: t.Name, Domain: t.Domain, Platform: t.Platform, RealPlatform: real}
}

// handleResync reports everything again to a registry that (re)started.
func (s *Scheduler) handleResync(ctx context.Context, _ *bus.Msg) {
	confs, err := s.store.AllConferences(ctx)
	if err != nil {
		s.log.Warn("registry resync failed", "err", err)
		return
	}
	n := 0
	for i := range confs {
		c := &confs[i]
		if c.State == protocol.StateRunning && c.RealPlatform == s.opts.Platform {
			s.reportRunning(c)
			n++
		}
	}
	for _, d := range s.cfg.Domains {
		if !s.serves(d.Platform) {
			continue
		}
		tpls, err := s.store.DomainTemplates(ctx, d.Moid, false)
		if err != nil {
			continue
		}
		for i := range tpls {
			s.report(protocol.UPUConfAddNtf, templateEntry(&tpls[i], s.opts.Platform))
			n++
		}
	}
	s.log.Info("registry resynced", "entries", n)
}
