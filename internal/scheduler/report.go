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

// handleResync reports everything again to a registry that (re)started:
// the conferences running here, whichever store holds them, and the
// bookings and templates of the platforms served.
func (s *Scheduler) handleResync(ctx context.Context, _ *bus.Msg) {
	n := 0
	for _, w := range s.dr.stores() {
		confs, err := w.st.AllConferences(ctx)
		if err != nil {
			s.log.Warn("registry resync failed", "platform", w.platform, "err", err)
			continue
		}
		for i := range confs {
			c := &confs[i]
			if c.State == protocol.StateRunning && c.RealPlatform == s.opts.Platform {
				s.reportRunning(c)
				n++
			}
		}
		if s.dr.serves(w.platform) {
			n += s.reportDirectoryOf(ctx, w.platform)
		}
	}
	s.log.Info("registry resynced", "entries", n)
}
