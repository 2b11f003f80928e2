package drill

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convene/convene/internal/apiclient"
)

// Processes runs the drill with every service in its own OS process
// (API, two schedulers, RMS, PMS, the registry, breakout, each media
// node) against a real nats-server and redis-server: it books
// conferences, then kills with SIGKILL, in turn, a media node, the active
// scheduler, RMS, PMS, the registry, the API, nats-server and
// redis-server, starting each again, and after each step waits until the
// platform settles and audits it. The error is for a drill that could not
// run; what it found is in the Result.
func Processes(ctx context.Context, opts Options) (Result, error) {
	if err := opts.defaults(); err != nil {
		return Result{}, err
	}
	if opts.Conferences <= 0 {
		opts.Conferences = 200
	}
	if opts.Nodes < 2 {
		opts.Nodes = 4
	}
	dir, done, err := opts.workDir("processes")
	if err != nil {
		return Result{}, err
	}
	r := &run{opts: opts, start: time.Now()}
	res, err := r.processes(ctx, dir)
	done(err == nil && res.Passed())
	if err != nil || !res.Passed() {
		fmt.Fprintln(opts.Out, logsHint(dir))
	}
	return res, err
}

func (r *run) processes(ctx context.Context, dir string) (Result, error) {
	lay := layout{apis: 1, schedulers: 2, services: 1, nodes: r.opts.Nodes, nodeHosts: r.opts.Nodes}
	d, err := deploy(ctx, dir, r.opts.Binary, lay, r.opts.Conferences, r.opts.LogLevel)
	if err != nil {
		return Result{}, err
	}
	defer d.close()
	r.d = d
	r.logf("platform up: %d processes (API, 2 schedulers, RMS, PMS, registry, breakout, %d media nodes), nats-server, redis-server", len(d.services), r.opts.Nodes)
	api := apiclient.New("http://"+d.apiAddrs()[0], apiToken)
	defer api.CloseIdleConnections()

	if err := book(ctx, api, r.opts.Conferences); err != nil {
		return Result{}, err
	}
	m, _ := r.settle(ctx, "booked", nil)
	want := m.Running.clone()
	m.Want = want.clone()
	r.logf("booked %d conferences on %d media nodes", len(want), r.opts.Nodes)
	if len(want) != r.opts.Conferences {
		r.fail("%d conferences run after booking %d", len(want), r.opts.Conferences)
	}
	r.record(m, 0)

	steps := []struct {
		name string
		do   func(context.Context, string, Census) (time.Duration, Measure)
	}{
		{"media node killed", r.killNode},
		{"active scheduler killed", r.killActiveScheduler},
		{"RMS killed", r.killService("rms")},
		{"PMS killed", r.killService("pms")},
		{"registry killed", r.killService("registry")},
		{"API killed", r.killService("api")},
		{"nats-server killed", r.killNATS},
		{"redis-server killed", r.killRedis},
	}
	for _, st := range steps {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		rec, m := st.do(ctx, st.name, want)
		r.record(m, rec)
		if st.name == "registry killed" {
			r.checkRegistry(ctx, api, want)
		}
		// The platform takes work after each step: one more conference,
		// which must run from then on.
		if c, err := createOne(ctx, api, "after: "+st.name); err != nil {
			r.fail("after %s: a create failed: %v", st.name, err)
		} else {
			want[c.E164] = Ident{Domain: c.Domain, Class: classOf(c.Scale, c.Resolution)}
		}
	}
	m, _ = r.settle(ctx, "end", want)
	r.record(m, 0)
	return r.result(), nil
}

// killNode kills the media node hosting the most conferences: the
// platform must restore them on the others; then the node starts again.
func (r *run) killNode(ctx context.Context, step string, want Census) (time.Duration, Measure) {
	s, err := r.d.obs.take(ctx, r.d.liveNodes())
	if err != nil {
		r.fail("no view of the nodes before the kill: %v", err)
	}
	var victim *service
	most := -1
	for _, h := range r.d.byKind("nodes") {
		n := 0
		for _, id := range h.nodes {
			n += len(s.Hosted[id])
		}
		if n > most {
			victim, most = h, n
		}
	}
	t0 := time.Now()
	victim.proc.kill()
	r.logf("killed media node host %s (SIGKILL; %d conferences)", victim.name, most)
	m, ok := r.settle(ctx, step, want)
	rec := time.Since(t0)
	if ok {
		r.logf("  every conference runs once again %s after the kill", ms(rec))
	}
	if err := r.restart(ctx, victim); err != nil {
		r.fail("%v", err)
		return rec, m
	}
	m2, _ := r.settle(ctx, step, want)
	if !ok {
		return rec, m
	}
	return rec, m2
}

// killActiveScheduler kills the scheduler holding the lease: the standby
// must take over and move nothing; then the killed one starts again.
func (r *run) killActiveScheduler(ctx context.Context, step string, want Census) (time.Duration, Measure) {
	active, err := r.d.obs.activeScheduler(ctx)
	var victim *service
	for _, s := range r.d.byKind("scheduler") {
		if s.id == active {
			victim = s
		}
	}
	if err != nil || victim == nil {
		r.fail("no active scheduler to kill (lease holder %q, %v)", active, err)
		m, _ := r.settle(ctx, step, want)
		return 0, m
	}
	before := r.placement(ctx)
	t0 := time.Now()
	victim.proc.kill()
	r.logf("killed the active scheduler %s (SIGKILL)", victim.name)
	took := r.waitFor(ctx, "a standby to take the lease", func() bool {
		id, err := r.d.obs.activeScheduler(ctx)
		return err == nil && id != "" && id != active
	})
	if took {
		id, _ := r.d.obs.activeScheduler(ctx)
		r.logf("  %s active after %s", id, ms(time.Since(t0)))
	}
	m, _ := r.settle(ctx, step, want)
	rec := time.Since(t0)
	if moved := diff(before, r.placement(ctx)); moved > 0 {
		r.fail("the takeover moved %d conferences", moved)
	}
	if err := r.restart(ctx, victim); err != nil {
		r.fail("%v", err)
	}
	return rec, m
}

// killService kills the (only) host of kind and starts it again at once.
func (r *run) killService(kind string) func(context.Context, string, Census) (time.Duration, Measure) {
	return func(ctx context.Context, step string, want Census) (time.Duration, Measure) {
		victim := r.d.byKind(kind)[0]
		before := r.placement(ctx)
		t0 := time.Now()
		victim.proc.kill()
		r.logf("killed %s (SIGKILL)", victim.name)
		if err := r.restart(ctx, victim); err != nil {
			r.fail("%v", err)
		}
		m, ok := r.settle(ctx, step, want)
		rec := time.Since(t0)
		if ok {
			r.logf("  every conference runs once %s after the kill", ms(rec))
		}
		if moved := diff(before, r.placement(ctx)); moved > 0 {
			r.logf("  %d conferences moved to another node meanwhile", moved)
		}
		return rec, m
	}
}

// killNATS kills nats-server and starts it again on the same port: every
// process reconnects.
func (r *run) killNATS(ctx context.Context, step string, want Census) (time.Duration, Measure) {
	before := r.placement(ctx)
	t0 := time.Now()
	r.d.nats.kill()
	r.logf("killed nats-server (SIGKILL)")
	if err := r.d.nats.startAndWait(); err != nil {
		r.fail("nats-server did not start again: %v", err)
	} else {
		r.logf("  nats-server answers again after %s", ms(time.Since(t0)))
	}
	r.waitAllReady(ctx, t0)
	m, ok := r.settle(ctx, step, want)
	rec := time.Since(t0)
	if ok {
		r.logf("  every conference runs once %s after the kill", ms(rec))
	}
	if moved := diff(before, r.placement(ctx)); moved > 0 {
		r.logf("  %d conferences moved to another node meanwhile", moved)
	}
	return rec, m
}

// killRedis kills redis-server and starts it again on its append-only
// file: nothing acknowledged is lost.
func (r *run) killRedis(ctx context.Context, step string, want Census) (time.Duration, Measure) {
	t0 := time.Now()
	r.d.redis.Kill()
	r.logf("killed redis-server (SIGKILL)")
	if err := r.d.redis.Restart(); err != nil {
		r.fail("redis-server did not start again: %v", err)
	} else {
		r.logf("  redis-server answers again after %s, from its append-only file", ms(time.Since(t0)))
	}
	m, ok := r.settle(ctx, step, want)
	rec := time.Since(t0)
	if ok {
		r.logf("  every conference runs once %s after the kill", ms(rec))
	}
	return rec, m
}

// restart starts a killed host again and waits until it is ready.
func (r *run) restart(ctx context.Context, s *service) error {
	t0 := time.Now()
	if err := r.d.startService(ctx, s); err != nil {
		return fmt.Errorf("%s did not start again: %w", s.name, err)
	}
	r.logf("  %s started again, ready after %s", s.name, ms(time.Since(t0)))
	return nil
}

// waitAllReady waits until every host has said, since t0, that it runs
// (after the bus came back, say).
func (r *run) waitAllReady(ctx context.Context, t0 time.Time) {
	for _, s := range r.d.services {
		if err := r.d.hosts.waitReady(ctx, s.proc, time.Time{}, t0, r.d.readyTimeout); err != nil {
			r.fail("%v", err)
		}
	}
}

// waitFor polls cond until it holds or the settle timeout passes.
func (r *run) waitFor(ctx context.Context, what string, cond func() bool) bool {
	deadline := time.Now().Add(r.opts.SettleTimeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.fail("timed out waiting for %s", what)
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// placement is which node each conference of the store runs on.
func (r *run) placement(ctx context.Context) map[string]string {
	out := map[string]string{}
	confs, err := r.d.obs.store.AllConferences(ctx)
	if err != nil {
		return out
	}
	for _, c := range confs {
		out[c.E164] = c.Node
	}
	return out
}

func diff(a, b map[string]string) int {
	n := 0
	for k, v := range a {
		if w, ok := b[k]; ok && w != v {
			n++
		}
	}
	return n
}

// checkRegistry asks the API's registry view for a sample of the running
// conferences: a restarted registry must know each, on its node.
func (r *run) checkRegistry(ctx context.Context, api *apiclient.Client, want Census) {
	where := r.placement(ctx)
	n := 0
	for _, e164 := range sortedKeys(want) {
		if n == 20 {
			break
		}
		n++
		r.waitFor(ctx, "the registry to know "+e164, func() bool {
			e, err := api.Registry(ctx, e164)
			return err == nil && e.Node == where[e164]
		})
	}
	r.logf("  the registry knows %d conferences it was asked about, each on its node", n)
}

// book creates n conferences through the API, eight at a time.
func book(ctx context.Context, api *apiclient.Client, n int) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for int(next.Add(1)) <= n && ctx.Err() == nil {
				if _, err := createOne(ctx, api, "drill"); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("drill: booking refused a create: %w", first)
	}
	return nil
}

func createOne(ctx context.Context, api *apiclient.Client, name string) (apiclient.Conference, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return api.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: name, Domain: tenant, Scale: 8, Resolution: "720p", DurationMinutes: 120})
}
