package alarms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
)

// Options tune the service; the zero value of a field takes its default
// (defaults, the one place they live).
type Options struct {
	// Platform is the moid of the platform watched.
	Platform string
	// Interval is how often every check runs; a notification (a node, room
	// or platform changed) runs them at once besides.
	Interval time.Duration
	// CheckTimeout bounds each check (a bus request, a store read) and
	// each write to the records database.
	CheckTimeout time.Duration
	// LicencePercent: a licence class used above this share of its limit
	// alarms.
	LicencePercent int
	// RestoreAttempts: a conference whose restore failed this many times
	// alarms.
	RestoreAttempts int
	// Domains are the user domains whose licences are watched.
	Domains []string
	// WebhookURL, when set, is sent every new alarm (POST, JSON).
	WebhookURL string
	// WebhookBackoff is the first wait before a webhook is tried again;
	// it doubles up to WebhookMaxBackoff.
	WebhookBackoff    time.Duration
	WebhookMaxBackoff time.Duration
	// History is how many alarms GET /v1/alarms?state=all lists at most,
	// and how many cleared alarms the service keeps in memory.
	History int
}

func (o *Options) defaults() error {
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.CheckTimeout == 0 {
		o.CheckTimeout = 2 * time.Second
	}
	if o.LicencePercent == 0 {
		o.LicencePercent = 90
	}
	if o.RestoreAttempts == 0 {
		o.RestoreAttempts = 3
	}
	if o.WebhookBackoff == 0 {
		o.WebhookBackoff = 500 * time.Millisecond
	}
	if o.WebhookMaxBackoff == 0 {
		o.WebhookMaxBackoff = 30 * time.Second
	}
	if o.History == 0 {
		o.History = 1000
	}
	switch {
	case !protocol.ValidToken(o.Platform):
		return fmt.Errorf("%w: platform %q: give the platform's moid", ErrOptions, o.Platform)
	case o.Interval < 0 || o.CheckTimeout < 0 || o.WebhookBackoff < 0 || o.WebhookMaxBackoff < o.WebhookBackoff:
		return fmt.Errorf("%w: give positive durations, a webhook's longest backoff no shorter than its first", ErrOptions)
	case o.LicencePercent < 1 || o.LicencePercent > 100:
		return fmt.Errorf("%w: licence_percent %d: give 1 to 100", ErrOptions, o.LicencePercent)
	case o.RestoreAttempts < 1:
		return fmt.Errorf("%w: restore_attempts %d: give 1 or more", ErrOptions, o.RestoreAttempts)
	case o.History < 1:
		return fmt.Errorf("%w: history %d: give 1 or more", ErrOptions, o.History)
	}
	if o.WebhookURL != "" {
		if err := checkWebhookURL(o.WebhookURL); err != nil {
			return err
		}
	}
	return nil
}

// Bus is what the service needs of its bus connection.
type Bus interface {
	Call(ctx context.Context, subject string, req, ack any) error
	Publish(subject string, v any) error
	Subscribe(subject string, h bus.Handler, opts ...bus.SubOption) (*bus.Subscription, error)
	Connected() bool
}

// Store is what the service reads of the platform store.
type Store interface {
	Ping(ctx context.Context) error
	License(ctx context.Context, moid string) (license.Usage, error)
	Pending(ctx context.Context) ([]string, error)
	Conferences(ctx context.Context, e164s []string) ([]protocol.Conference, error)
}

// Records is where alarms are kept (a *records.DB).
type Records interface {
	RaiseAlarm(ctx context.Context, a records.Alarm) (records.Alarm, error)
	ClearAlarm(ctx context.Context, id string, at time.Time) (records.Alarm, error)
	AckAlarm(ctx context.Context, id string, at time.Time) (records.Alarm, error)
	Alarm(ctx context.Context, id string) (records.Alarm, error)
	Alarms(ctx context.Context, activeOnly bool, limit int) ([]records.Alarm, error)
}

// Deps are what the service uses. Records, Hosts, Metrics and HTTP may be
// nil: alarms then live in memory only, hosts are not watched, no gauge
// is exported, the webhook uses a client of its own.
type Deps struct {
	Bus     Bus
	Store   Store
	Records Records
	// Hosts are the latest statuses of the platform's hosts; false when
	// they cannot be told now.
	Hosts   func(ctx context.Context) ([]host.HostStatus, bool)
	Metrics prometheus.Registerer
	HTTP    *http.Client
	Log     *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// entry is one alarm the service holds: active, cleared and kept as
// history, or not yet written. Version counts its changes; written is the
// version the records database holds.
type entry struct {
	a       records.Alarm
	version uint64
	written uint64
}

// Service is the alarm service.
type Service struct {
	opts  Options
	deps  Deps
	log   *slog.Logger
	gauge *prometheus.GaugeVec
	hook  *webhook

	wake   chan struct{} // run the checks now
	write  chan struct{} // write to records now
	cancel context.CancelFunc
	wg     sync.WaitGroup
	subs   []*bus.Subscription
	once   sync.Once
	ready  chan struct{}
	passes atomic.Uint64 // checks done, for tests that wait for some

	// mu guards what follows; it is never held across I/O.
	mu     sync.Mutex
	active map[Key]*entry
	byID   map[string]*entry
	recent []*entry // cleared, oldest first, at most History
	hosts  map[string]bool
	loaded bool // the records' active alarms were read
	down   bool // the records database failed the last write
}

// New makes the service; Start runs it.
func New(opts Options, deps Deps) (*Service, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if deps.Bus == nil || deps.Store == nil {
		return nil, fmt.Errorf("%w: the alarm service needs a bus connection and the store", ErrOptions)
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Service{opts: opts, deps: deps, log: deps.Log, wake: make(chan struct{}, 1), write: make(chan struct{}, 1),
		ready: make(chan struct{}), active: map[Key]*entry{}, byID: map[string]*entry{}, hosts: map[string]bool{}}
	s.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "convene_alarm_active",
		Help: "1 for each active alarm, by kind, subject and severity.",
	}, []string{"kind", "subject", "severity"})
	if deps.Metrics != nil {
		if err := deps.Metrics.Register(s.gauge); err != nil {
			return nil, fmt.Errorf("alarms: register metrics: %w", err)
		}
	}
	if opts.WebhookURL != "" {
		s.hook = newWebhook(opts, deps.HTTP, s.log)
	}
	return s, nil
}

// Start reads the alarms active in the records database (so that none is
// raised twice across a restart), follows the notifications that call for
// a check, and starts checking. It does not wait for the first check.
func (s *Service) Start(ctx context.Context) error {
	if s.deps.Records != nil {
		lctx, cancel := context.WithTimeout(ctx, s.opts.CheckTimeout)
		err := s.load(lctx)
		cancel()
		if err != nil {
			s.log.Warn("alarms: the records database did not answer; alarms are kept in memory until it does", "err", err)
		}
	}
	for _, subj := range []string{protocol.SubjectRMSNotify(s.opts.Platform), protocol.SubjectServerRoomNotify,
		protocol.SubjectPlatformNotify, protocol.SubjectLicenseNotify} {
		sub, err := s.deps.Bus.Subscribe(subj, bus.HandlerFunc(func(context.Context, *bus.Msg) { s.poke() }))
		if err != nil {
			s.unsubscribe()
			return fmt.Errorf("alarms: follow %s: %w", subj, err)
		}
		s.subs = append(s.subs, sub)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Add(2)
	go s.checkLoop(rctx)
	go s.writeLoop(rctx)
	if s.hook != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.hook.run(rctx) }()
	}
	close(s.ready)
	return nil
}

// Ready is closed once the service runs.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Shutdown stops checking, writes what the records database does not
// hold yet (within ctx), and stops.
func (s *Service) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		s.unsubscribe()
		if s.cancel != nil {
			s.cancel()
		}
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
			return
		}
		if s.deps.Records != nil {
			if werr := s.flush(ctx); werr != nil {
				s.log.Warn("alarms: stopped with alarms the records database does not hold", "err", werr)
			}
		}
	})
	return err
}

func (s *Service) unsubscribe() {
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
	s.subs = nil
}

// poke runs the checks soon.
func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Service) pokeWriter() {
	select {
	case s.write <- struct{}{}:
	default:
	}
}

// checkLoop runs every check each interval, and when poked.
func (s *Service) checkLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		s.apply(s.observe(ctx))
		s.passes.Add(1)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// writeLoop writes changed alarms to the records database, after each
// change and each interval while one is not written.
func (s *Service) writeLoop(ctx context.Context) {
	defer s.wg.Done()
	if s.deps.Records == nil {
		return
	}
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.write:
		}
		_ = s.flush(ctx)
	}
}

// now is the clock to the millisecond, as the records keep it.
func (s *Service) now() time.Time { return time.UnixMilli(s.deps.Now().UnixMilli()).UTC() }

// apply raises and clears what one pass calls for, then announces it.
func (s *Service) apply(o observation) {
	now := s.now()
	s.mu.Lock()
	active := make(map[Key]bool, len(s.active))
	for k := range s.active {
		active[k] = true
	}
	raise, clear := reconcile(active, o)
	events := make([]apiclient.AlarmEvent, 0, len(raise)+len(clear))
	for _, k := range raise {
		e := &entry{a: records.Alarm{ID: newID(), Kind: k.Kind, Subject: k.Subject, Severity: Severity(k.Kind), RaisedAt: now}, version: 1}
		s.active[k], s.byID[e.a.ID] = e, e
		s.gauge.WithLabelValues(e.a.Kind, e.a.Subject, e.a.Severity).Set(1)
		if k.Kind == apiclient.AlarmHostDown {
			s.hosts[k.Subject] = true
		}
		events = append(events, apiclient.AlarmEvent{Type: apiclient.AlarmRaised, Alarm: view(e.a)})
	}
	for _, k := range clear {
		e := s.active[k]
		e.a.ClearedAt = now
		e.version++
		delete(s.active, k)
		s.gauge.DeleteLabelValues(e.a.Kind, e.a.Subject, e.a.Severity)
		s.recent = append(s.recent, e)
		events = append(events, apiclient.AlarmEvent{Type: apiclient.AlarmCleared, Alarm: view(e.a)})
	}
	s.trimRecent()
	s.mu.Unlock()
	if len(events) > 0 {
		s.announce(events)
		s.pokeWriter()
	}
}

// trimRecent forgets the oldest cleared alarms beyond History, once the
// records database holds them. Called with mu held.
func (s *Service) trimRecent() {
	n := 0
	for len(s.recent)-n > s.opts.History {
		e := s.recent[n]
		if e.written != e.version && s.deps.Records != nil {
			break
		}
		delete(s.byID, e.a.ID)
		n++
	}
	s.recent = s.recent[n:]
}

// announce publishes each event on the bus, sends new alarms to the
// webhook, and logs them. (The gauge changes with the active alarms, under
// mu, so that no reader sees one without the other.)
func (s *Service) announce(events []apiclient.AlarmEvent) {
	for _, ev := range events {
		a := ev.Alarm
		switch ev.Type {
		case apiclient.AlarmRaised:
			s.log.Warn("alarm raised", "alarm", a.ID, "kind", a.Kind, "subject", a.Subject, "severity", a.Severity)
			if s.hook != nil {
				s.hook.send(ev)
			}
		case apiclient.AlarmCleared:
			s.log.Info("alarm cleared", "alarm", a.ID, "kind", a.Kind, "subject", a.Subject)
		case apiclient.AlarmAcked:
			s.log.Info("alarm acknowledged", "alarm", a.ID, "kind", a.Kind, "subject", a.Subject)
		}
		if err := s.deps.Bus.Publish(protocol.SubjectAlarmNotify(s.opts.Platform), ev); err != nil {
			s.log.Debug("alarms: could not announce", "alarm", a.ID, "type", ev.Type, "err", err)
		}
	}
}

// Passes counts the checks of every kind done so far.
func (s *Service) Passes() uint64 { return s.passes.Load() }

// Active lists the active alarms, the latest raised first.
func (s *Service) Active() []apiclient.Alarm {
	s.mu.Lock()
	out := make([]apiclient.Alarm, 0, len(s.active))
	for _, e := range s.active {
		out = append(out, view(e.a))
	}
	s.mu.Unlock()
	sortAlarms(out)
	return out
}

// Ack acknowledges the alarm id and answers it as it is after; changed
// says whether it was not acknowledged before. Errors: ErrNotFound, or
// the records database's when only it knows the alarm.
func (s *Service) Ack(ctx context.Context, id string) (a apiclient.Alarm, changed bool, err error) {
	now := s.now()
	s.mu.Lock()
	e, ok := s.byID[id]
	if ok {
		if !e.a.Acked {
			e.a.Acked, e.a.AckedAt = true, now
			e.version++
			changed = true
		}
		a = view(e.a)
	}
	s.mu.Unlock()
	if !ok {
		if s.deps.Records == nil {
			return apiclient.Alarm{}, false, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		rctx, cancel := context.WithTimeout(ctx, s.opts.CheckTimeout)
		defer cancel()
		stored, err := s.deps.Records.AckAlarm(rctx, id, now)
		if errors.Is(err, records.ErrNotFound) {
			return apiclient.Alarm{}, false, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		if err != nil {
			return apiclient.Alarm{}, false, err
		}
		a, changed = view(stored), stored.AckedAt.Equal(now)
	}
	if changed {
		s.announce([]apiclient.AlarmEvent{{Type: apiclient.AlarmAcked, Alarm: a}})
		s.pokeWriter()
	}
	return a, changed, nil
}
