package platform

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/protocol"
)

// PlatformSpec is a platform as configured: what PMS tells about it in
// PLATFORM_CONFIG_NOTIFY and PLATFORM_STATE_NOTIFY.
type PlatformSpec struct {
	Moid          string
	Name          string
	NumberSegment string
	// Store and Bus are the platform's addresses (the seed's redis and
	// mq), for the schedulers that take its conferences over.
	Store string
	Bus   string
}

// Reasons a platform gives for its state.
const (
	// ReasonSwitchedOver is the platform's own reason when an operator
	// switched it abnormal without saying why.
	ReasonSwitchedOver = "switched over by an operator"
	// ReasonManualOn is a master's reason when its DR mode fails it over
	// whatever is observed.
	ReasonManualOn = "failed over by hand (manual-on)"
	// ReasonManualOff is a master's reason when its DR mode keeps it
	// normal while it is observed abnormal or unreachable.
	ReasonManualOff = "kept normal by hand (manual-off)"
	// ReasonClosed is a master's reason when its DR mode is closed: its
	// failures are not passed on to the scheduler.
	ReasonClosed = "disaster recovery closed: its failures are not passed on"
	// reasonNoBus is an unreachable platform's reason when PMS has no
	// connection to its bus at all.
	reasonNoBus = "unreachable: no connection to its bus"
)

// validDRMode reports whether mode is a DR mode.
func validDRMode(mode string) bool {
	switch mode {
	case protocol.DRAutomatic, protocol.DRManualOn, protocol.DRManualOff, protocol.DRClosed:
		return true
	}
	return false
}

// ownState is the platform's own state. Guarded by Service.mu.
type ownState struct {
	state  string // protocol.PlatformNormal or protocol.PlatformAbnormal
	manual bool   // abnormal because an operator said so (always, for now)
	reason string
	since  time.Time
}

// peer is a master or backup platform as PMS sees it. spec, master,
// backup, bus and configured are fixed after New; the rest is guarded by
// Service.mu. A platform that is both a master and a backup of this one
// (two platforms backing each other up) is one peer, polled once.
type peer struct {
	spec           PlatformSpec
	master, backup bool
	bus            *bus.Bus // nil: no connection, so unreachable
	configured     string   // the DR mode Options gave (masters)

	mode      string // DR mode (masters)
	observed  string // what polls say: "" until the first result, then normal, abnormal or unreachable
	obsReason string // why it is observed abnormal or unreachable
	misses    int    // polls in a row without an answer
	answered  bool   // it has answered a poll since PMS started

	// view is the observed state as normal or abnormal (unreachable is
	// abnormal): what a backup's entry shows.
	view      string
	viewSince time.Time
	// state is the effective state of a master: what its DR mode makes of
	// what is observed, and what the scheduler acts on.
	state  string
	reason string
	since  time.Time
}

// effective is what the DR mode makes of what is observed.
func (p *peer) effective() (state, reason string) {
	failing := p.observed == protocol.PlatformAbnormal || p.observed == protocol.PlatformUnreachable
	switch {
	case !p.master:
		if failing {
			return protocol.PlatformAbnormal, p.obsReason
		}
		return protocol.PlatformNormal, ""
	case p.mode == protocol.DRManualOn:
		return protocol.PlatformAbnormal, ReasonManualOn
	case p.mode == protocol.DRManualOff:
		if failing {
			return protocol.PlatformNormal, ReasonManualOff + "; observed " + p.obsReason
		}
		return protocol.PlatformNormal, ""
	case p.mode == protocol.DRClosed:
		if failing {
			return protocol.PlatformNormal, ReasonClosed + "; observed " + p.obsReason
		}
		return protocol.PlatformNormal, ReasonClosed
	case failing:
		return protocol.PlatformAbnormal, p.obsReason
	}
	return protocol.PlatformNormal, ""
}

// settle brings view and state up to date with observed and mode; it
// reports whether the effective state of a master changed.
func (p *peer) settle(now time.Time) bool {
	view := protocol.PlatformNormal
	if p.observed == protocol.PlatformAbnormal || p.observed == protocol.PlatformUnreachable {
		view = protocol.PlatformAbnormal
	}
	if view != p.view {
		p.view, p.viewSince = view, now
	}
	state, reason := p.effective()
	p.reason = reason
	if state == p.state {
		return false
	}
	p.state, p.since = state, now
	return p.master
}

func (p *peer) masterInfo() protocol.PlatformInfo {
	info := p.info(p.state, p.since)
	info.DRMode, info.Reason = p.mode, p.reason
	return info
}

func (p *peer) backupInfo() protocol.PlatformInfo {
	info := p.info(p.view, p.viewSince)
	if p.view == protocol.PlatformAbnormal {
		info.Reason = p.obsReason
	}
	return info
}

func (p *peer) info(state string, since time.Time) protocol.PlatformInfo {
	return protocol.PlatformInfo{
		Platform: p.spec.Moid, Name: p.spec.Name, NumberSegment: p.spec.NumberSegment,
		State: state, Observed: p.observed, SinceMs: since.UnixMilli(), Store: p.spec.Store, Bus: p.spec.Bus,
	}
}

// platformChange is a change of the platform's own state, of a master's
// DR mode or effective state, announced once mu is released.
type platformChange struct {
	platform, state, observed, mode, reason string
	cause                                   string // "operator", "polls", "restore"
}

func (p *peer) change(cause string) platformChange {
	return platformChange{platform: p.spec.Moid, state: p.state, observed: p.observed, mode: p.mode, reason: p.reason, cause: cause}
}

// platforms is the platform part of Service: fixed after New except
// where said.
type platforms struct {
	masters []*peer          // configured order
	backups []*peer          // configured order
	peers   map[string]*peer // by moid
	own     ownState         // guarded by Service.mu

	hookMu   sync.Mutex
	hooks    []func(protocol.PlatformStateNtf)
	hookKick chan struct{} // capacity 1: call the hooks with the newest view
}

// initPlatforms builds the peers from the options, which validate has
// checked. A peer with no bus connection is unreachable from the start.
func (s *Service) initPlatforms(now time.Time) {
	o := &s.opts
	s.pl.peers = make(map[string]*peer, len(o.Masters)+len(o.Backups))
	s.pl.own = ownState{state: protocol.PlatformNormal, since: now}
	s.pl.hookKick = make(chan struct{}, 1)
	get := func(spec PlatformSpec) *peer {
		p, ok := s.pl.peers[spec.Moid]
		if !ok {
			p = &peer{spec: spec, bus: o.Peers[spec.Moid], observed: "", view: protocol.PlatformNormal,
				viewSince: now, state: protocol.PlatformNormal, since: now}
			if p.bus == nil {
				p.observed, p.obsReason = protocol.PlatformUnreachable, reasonNoBus
			}
			s.pl.peers[spec.Moid] = p
		}
		return p
	}
	for _, spec := range o.Masters {
		p := get(spec)
		p.master = true
		p.configured = cmp.Or(o.DRModes[spec.Moid], protocol.DRAutomatic)
		p.mode = p.configured
		s.pl.masters = append(s.pl.masters, p)
	}
	for _, spec := range o.Backups {
		p := get(spec)
		p.backup = true
		s.pl.backups = append(s.pl.backups, p)
	}
	for _, p := range s.pl.peers {
		p.settle(now)
		p.since, p.viewSince = now, now
	}
}

// validatePlatforms checks the platform part of the options.
func (o *Options) validatePlatforms() error {
	if o.Self.Moid != o.Platform {
		return fmt.Errorf("%w: Self is platform %q but Platform is %q: they must be the same", ErrBadOptions, o.Self.Moid, o.Platform)
	}
	masters := make(map[string]bool, len(o.Masters))
	for _, list := range []struct {
		name  string
		specs []PlatformSpec
	}{{"master", o.Masters}, {"backup", o.Backups}} {
		seen := make(map[string]bool, len(list.specs))
		for _, spec := range list.specs {
			switch {
			case !protocol.ValidToken(spec.Moid):
				return fmt.Errorf("%w: %s platform moid %q: use 1-64 letters, digits, '-' or '_'", ErrBadOptions, list.name, spec.Moid)
			case spec.Moid == o.Platform:
				return fmt.Errorf("%w: platform %q is listed as its own %s", ErrBadOptions, spec.Moid, list.name)
			case seen[spec.Moid]:
				return fmt.Errorf("%w: %s platform %q is listed twice", ErrBadOptions, list.name, spec.Moid)
			}
			seen[spec.Moid] = true
			if list.name == "master" {
				masters[spec.Moid] = true
			}
		}
	}
	for moid, mode := range o.DRModes {
		switch {
		case !masters[moid]:
			return fmt.Errorf("%w: a DR mode is set for %q, which is not a master platform of %q", ErrBadOptions, moid, o.Platform)
		case !validDRMode(mode):
			return fmt.Errorf("%w: DR mode %q of %q: use %s", ErrBadOptions, mode, moid, drModeList)
		}
	}
	for moid := range o.Peers {
		if !masters[moid] && !slicesHas(o.Backups, moid) {
			return fmt.Errorf("%w: a bus connection is given for %q, which is neither a master nor a backup of %q", ErrBadOptions, moid, o.Platform)
		}
	}
	switch {
	case o.PollInterval < 0:
		return fmt.Errorf("%w: poll interval %s is negative", ErrBadOptions, o.PollInterval)
	case o.MissedPolls < 0:
		return fmt.Errorf("%w: missed polls %d is negative", ErrBadOptions, o.MissedPolls)
	}
	return nil
}

var drModeList = strings.Join([]string{protocol.DRAutomatic, protocol.DRManualOn, protocol.DRManualOff, protocol.DRClosed}, ", ")

func slicesHas(specs []PlatformSpec, moid string) bool {
	for _, s := range specs {
		if s.Moid == moid {
			return true
		}
	}
	return false
}

// Platforms is the platform's view of itself and of its masters and
// backups, with its rooms: what PLATFORM_STATE_NOTIFY carries.
func (s *Service) Platforms() protocol.PlatformStateNtf {
	return s.platformNotice(protocol.PlatformStateNotify)
}

func (s *Service) platformNotice(typ string) protocol.PlatformStateNtf {
	rooms := s.Rooms()
	s.mu.Lock()
	defer s.mu.Unlock()
	ntf := protocol.PlatformStateNtf{
		Type: typ, Platform: s.opts.Platform, State: s.pl.own.state, Manual: s.pl.own.manual, Reason: s.pl.own.reason,
		Masters: make([]protocol.PlatformInfo, 0, len(s.pl.masters)), Backups: make([]protocol.PlatformInfo, 0, len(s.pl.backups)),
		Rooms: rooms, SentAtMs: time.Now().UnixMilli(),
	}
	for _, p := range s.pl.masters {
		ntf.Masters = append(ntf.Masters, p.masterInfo())
	}
	for _, p := range s.pl.backups {
		ntf.Backups = append(ntf.Backups, p.backupInfo())
	}
	return ntf
}

// PlatformConfig is one platform as PMS knows it: this platform, one of
// its masters (with its DR mode) or one of its backups. An empty moid is
// this platform.
func (s *Service) PlatformConfig(moid string) (protocol.PlatformInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if moid == "" || moid == s.opts.Platform {
		self := s.opts.Self
		return protocol.PlatformInfo{
			Platform: self.Moid, Name: self.Name, NumberSegment: self.NumberSegment,
			State: s.pl.own.state, Manual: s.pl.own.manual, Reason: s.pl.own.reason, SinceMs: s.pl.own.since.UnixMilli(),
			Store: self.Store, Bus: self.Bus,
		}, nil
	}
	p, ok := s.pl.peers[moid]
	switch {
	case !ok:
		return protocol.PlatformInfo{}, s.unknownPlatform(moid)
	case p.master:
		return p.masterInfo(), nil
	}
	return p.backupInfo(), nil
}

func (s *Service) unknownPlatform(moid string) error {
	return reasonf(ErrUnknownPlatform, "%q is neither platform %q nor one of its masters or backups (%s); check the moid",
		moid, s.opts.Platform, s.peerList())
}

func (s *Service) peerList() string {
	var parts []string
	for _, p := range s.pl.masters {
		parts = append(parts, p.spec.Moid+" (master)")
	}
	for _, p := range s.pl.backups {
		parts = append(parts, p.spec.Moid+" (backup)")
	}
	if len(parts) == 0 {
		return "it has none"
	}
	return strings.Join(parts, ", ")
}

// SetOwnState switches the platform itself abnormal (state abnormal: a
// manual switchover, its backups take its conferences over and its
// scheduler stands down) or back to normal. An empty reason takes
// ReasonSwitchedOver. Setting the state it has is a no-op (an abnormal
// platform keeps its first reason). A change is saved and broadcast
// before SetOwnState returns.
func (s *Service) SetOwnState(state, reason string) error {
	c, err := s.setOwn(state, reason, time.Now())
	if err != nil || c == nil {
		return err
	}
	s.announcePlatform([]platformChange{*c}, true)
	return nil
}

func (s *Service) setOwn(state, reason string, now time.Time) (*platformChange, error) {
	switch {
	case state != protocol.PlatformNormal && state != protocol.PlatformAbnormal:
		return nil, reasonf(ErrBadPlatformState, "platform %q: state %q must be %q (switch back) or %q (switch over)",
			s.opts.Platform, state, protocol.PlatformNormal, protocol.PlatformAbnormal)
	case len(reason) > MaxReasonLen:
		return nil, reasonf(ErrBadReason, "platform %q: the reason is %d bytes; keep it to %d", s.opts.Platform, len(reason), MaxReasonLen)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	own := &s.pl.own
	if own.state == state {
		return nil, nil
	}
	if state == protocol.PlatformAbnormal {
		*own = ownState{state: state, manual: true, reason: cmp.Or(strings.TrimSpace(reason), ReasonSwitchedOver), since: now}
	} else {
		*own = ownState{state: state, since: now}
	}
	return &platformChange{platform: s.opts.Platform, state: own.state, reason: own.reason, cause: "operator"}, nil
}

// SetDRMode sets the disaster-recovery mode of a master platform:
// automatic (its effective state follows what is observed), manual-on
// (abnormal whatever is observed), manual-off (normal whatever is
// observed) or closed (normal as far as the scheduler is told: it never
// hears of the master's failures). A change is saved and broadcast before
// SetDRMode returns; setting the mode it has is a no-op.
func (s *Service) SetDRMode(master, mode string) error {
	c, err := s.setDRMode(master, mode, time.Now())
	if err != nil || c == nil {
		return err
	}
	s.announcePlatform([]platformChange{*c}, true)
	return nil
}

func (s *Service) setDRMode(master, mode string, now time.Time) (*platformChange, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pl.peers[master]
	switch {
	case master == s.opts.Platform:
		return nil, reasonf(ErrNotMaster, "%q is this platform itself: DR modes are set for its masters (%s)", master, s.peerList())
	case !ok:
		return nil, s.unknownPlatform(master)
	case !p.master:
		return nil, reasonf(ErrNotMaster, "%q is a backup of platform %q, not a master: DR modes are set for masters only (%s)",
			master, s.opts.Platform, s.peerList())
	case !validDRMode(mode):
		return nil, reasonf(ErrBadDRMode, "DR mode %q of %q: use %s", mode, master, drModeList)
	case p.mode == mode:
		return nil, nil
	}
	p.mode = mode
	p.settle(now)
	c := p.change("operator")
	return &c, nil
}

// announcePlatform logs changes, saves the operators' decisions when asked
// to, broadcasts the new view and wakes the hooks. The caller holds no
// lock.
func (s *Service) announcePlatform(cs []platformChange, persist bool) {
	if len(cs) == 0 {
		return
	}
	for _, c := range cs {
		args := []any{"target", c.platform, "state", c.state, "by", c.cause, "reason", c.reason}
		if c.platform == s.opts.Platform {
			s.log.Info("platform state changed", args...)
			continue
		}
		s.log.Info("master platform state changed", append(args, "observed", c.observed, "drmode", c.mode)...)
	}
	if persist {
		s.save()
	}
	s.broadcastPlatform()
	s.kickHooks()
}

// broadcastPlatform sends the view on monitor.notify.platform. Like the
// room broadcast it is read under pubMu, so broadcasts never go backwards.
func (s *Service) broadcastPlatform() {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if err := s.bus.Publish(protocol.SubjectPlatformNotify, s.platformNotice(protocol.PlatformStateNotify)); err != nil {
		s.log.Error("pms could not broadcast the platform state", "err", err)
	}
}

// OnPlatformState registers f to be told the view (as Platforms returns
// it) once PMS started and after every change it broadcasts. Calls come
// one at a time from one goroutine, always with the newest view: changes
// that come while f runs are told once, after. f may call the Service.
func (s *Service) OnPlatformState(f func(protocol.PlatformStateNtf)) {
	s.pl.hookMu.Lock()
	s.pl.hooks = append(s.pl.hooks, f)
	s.pl.hookMu.Unlock()
	if s.life.Ready() {
		s.kickHooks()
	}
}

func (s *Service) kickHooks() {
	select {
	case s.pl.hookKick <- struct{}{}:
	default:
	}
}

// hookLoop calls the hooks when kicked, until Shutdown.
func (s *Service) hookLoop() {
	for {
		select {
		case <-s.stop:
			return
		case <-s.pl.hookKick:
		}
		s.pl.hookMu.Lock()
		hooks := slices.Clone(s.pl.hooks)
		s.pl.hookMu.Unlock()
		if len(hooks) == 0 {
			continue
		}
		view := s.Platforms()
		for _, f := range hooks {
			f(view)
		}
	}
}
