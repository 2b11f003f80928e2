package alarms

import (
	"context"
	"errors"
	"sync"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// restoreReadBatch is how many conferences one read of the store takes.
const restoreReadBatch = 500

// observe runs every check at once, each within CheckTimeout, and
// gathers what they saw. A check that cannot look reports nothing, so
// its alarms stay as they are.
func (s *Service) observe(ctx context.Context) observation {
	o := newObservation()
	var mu sync.Mutex
	report := func(f func(o observation)) {
		mu.Lock()
		f(o)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	run := func(check func(ctx context.Context, report func(func(observation)))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, s.opts.CheckTimeout)
			defer cancel()
			check(cctx, report)
		}()
	}
	connected := s.deps.Bus.Connected()
	report(func(o observation) {
		var causes []Key
		if !connected {
			causes = append(causes, Key{apiclient.AlarmBusUnreachable, "bus"})
		}
		o.saw(apiclient.AlarmBusUnreachable, causes...)
	})
	if connected {
		run(s.checkNodes)
		run(s.checkRooms)
		run(s.checkPlatforms)
	}
	run(s.checkStore)
	if s.deps.Hosts != nil {
		run(s.checkHosts)
	}
	wg.Wait()
	return o
}

func (s *Service) checkNodes(ctx context.Context, report func(func(observation))) {
	var ack protocol.NodeListAck
	if err := s.deps.Bus.Call(ctx, protocol.SubjectRMS(s.opts.Platform), protocol.Header{Type: protocol.RMSNodeListReq}, &ack); err != nil {
		s.log.Debug("alarms: RMS did not list the nodes", "err", err)
		return
	}
	report(func(o observation) { o.saw(apiclient.AlarmNodeDown, nodeCauses(ack.Nodes)...) })
}

func (s *Service) checkRooms(ctx context.Context, report func(func(observation))) {
	var ntf protocol.ServerRoomStateNtf
	req := protocol.ServerRoomStateReq{Type: protocol.ServerRoomStateRq, Platform: s.opts.Platform}
	if err := s.deps.Bus.Call(ctx, protocol.SubjectPMS(s.opts.Platform), req, &ntf); err != nil {
		s.log.Debug("alarms: the monitor did not list the rooms", "err", err)
		return
	}
	report(func(o observation) { o.saw(apiclient.AlarmRoomFailed, roomCauses(ntf.Rooms)...) })
}

func (s *Service) checkPlatforms(ctx context.Context, report func(func(observation))) {
	var ntf protocol.PlatformStateNtf
	req := protocol.PlatformStateReqMsg{Type: protocol.PlatformStateRq, Platform: s.opts.Platform}
	if err := s.deps.Bus.Call(ctx, protocol.SubjectPMS(s.opts.Platform), req, &ntf); err != nil {
		s.log.Debug("alarms: the monitor did not say the platforms' states", "err", err)
		return
	}
	report(func(o observation) { o.saw(apiclient.AlarmPlatformFailed, platformCauses(ntf)...) })
}

// checkStore pings the store; when it answers, it reads the licences and
// the conferences waiting for a restore.
func (s *Service) checkStore(ctx context.Context, report func(func(observation))) {
	if err := s.deps.Store.Ping(ctx); err != nil {
		report(func(o observation) {
			o.saw(apiclient.AlarmStoreUnreachable, Key{apiclient.AlarmStoreUnreachable, "store"})
		})
		return
	}
	report(func(o observation) { o.saw(apiclient.AlarmStoreUnreachable) })

	var licences []Key
	licencesOK := true
	for _, d := range s.opts.Domains {
		u, err := s.deps.Store.License(ctx, d)
		if errors.Is(err, store.ErrDomainNotFound) {
			continue
		}
		if err != nil {
			licencesOK = false
			break
		}
		licences = append(licences, licenceCauses(d, u, s.opts.LicencePercent)...)
	}
	if licencesOK {
		report(func(o observation) { o.saw(apiclient.AlarmLicenceHigh, licences...) })
	}

	if causes, ok := s.failingRestores(ctx); ok {
		report(func(o observation) { o.saw(apiclient.AlarmRestoreFailing, causes...) })
	}
}

// failingRestores reads the conferences waiting for a restore, and those
// alarmed already (a restore being tried again is not waiting for one).
func (s *Service) failingRestores(ctx context.Context) ([]Key, bool) {
	pending, err := s.deps.Store.Pending(ctx)
	if err != nil {
		return nil, false
	}
	seen := make(map[string]bool, len(pending))
	for _, e := range pending {
		seen[e] = true
	}
	s.mu.Lock()
	for k := range s.active {
		if k.Kind == apiclient.AlarmRestoreFailing && !seen[k.Subject] {
			pending = append(pending, k.Subject)
			seen[k.Subject] = true
		}
	}
	s.mu.Unlock()
	var causes []Key
	for i := 0; i < len(pending); i += restoreReadBatch {
		confs, err := s.deps.Store.Conferences(ctx, pending[i:min(i+restoreReadBatch, len(pending))])
		if err != nil {
			return nil, false
		}
		causes = append(causes, restoreCauses(confs, s.opts.RestoreAttempts)...)
	}
	return causes, true
}

// checkHosts judges the hosts and their plugins from their statuses.
func (s *Service) checkHosts(ctx context.Context, report func(func(observation))) {
	statuses, ok := s.deps.Hosts(ctx)
	if !ok {
		return
	}
	s.mu.Lock()
	known := make(map[string]bool, len(s.hosts))
	for h := range s.hosts {
		known[h] = true
	}
	active := make(map[Key]bool)
	for k := range s.active {
		active[k] = true
	}
	for _, st := range statuses {
		if st.Running {
			s.hosts[st.Host] = true
		} else {
			delete(s.hosts, st.Host) // stopped on purpose: no longer watched
		}
	}
	s.mu.Unlock()
	causes, kept := hostCauses(known, statuses, active)
	report(func(o observation) {
		o.checked[apiclient.AlarmHostDown] = true
		o.saw(apiclient.AlarmPluginStopped, causes...)
		o.keep(kept...)
	})
}
