package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/convene/convene/internal/apiclient"
)

// RollingOptions tune the rolling drill beyond Options.
type RollingOptions struct {
	Options
	// Rate is the client's operations a second (creates and ends);
	// Window how many of its conferences it keeps running.
	Rate   int
	Window int
}

// Rolling runs two instances of every service, each in its own process
// (two APIs on two addresses), and restarts each process in turn (SIGTERM,
// start again, wait until ready) while a client creates and ends
// conferences at a steady rate, turning to the other API only when a
// connection is refused. Conferences booked before the roll must run
// throughout; at the end, exactly those and the client's must run.
func Rolling(ctx context.Context, opts RollingOptions) (Result, error) {
	if err := opts.defaults(); err != nil {
		return Result{}, err
	}
	if opts.Conferences <= 0 {
		opts.Conferences = 100
	}
	if opts.Nodes < 2 {
		opts.Nodes = 4
	}
	if opts.Rate <= 0 {
		opts.Rate = 20
	}
	if opts.Window <= 0 {
		opts.Window = 50
	}
	dir, done, err := opts.workDir("rolling")
	if err != nil {
		return Result{}, err
	}
	r := &run{opts: opts.Options, start: time.Now()}
	res, err := r.rolling(ctx, dir, opts.Rate, opts.Window)
	done(err == nil && res.Passed())
	if err != nil || !res.Passed() {
		fmt.Fprintln(opts.Out, logsHint(dir))
	}
	return res, err
}

func (r *run) rolling(ctx context.Context, dir string, rate, window int) (Result, error) {
	lay := layout{apis: 2, schedulers: 2, services: 2, nodes: r.opts.Nodes, nodeHosts: 2}
	d, err := deploy(ctx, dir, r.opts.Binary, lay, r.opts.Conferences+window, r.opts.LogLevel)
	if err != nil {
		return Result{}, err
	}
	defer d.close()
	r.d = d
	r.logf("platform up: two of every service, %d processes, %d media nodes; APIs on %v", len(d.services), r.opts.Nodes, d.apiAddrs())
	api := apiclient.New("http://"+d.apiAddrs()[0], apiToken)
	defer api.CloseIdleConnections()
	if err := book(ctx, api, r.opts.Conferences); err != nil {
		return Result{}, err
	}
	m, _ := r.settle(ctx, "booked", nil)
	base := m.Running.clone()
	m.Want = base.clone()
	r.record(m, 0)
	if len(base) != r.opts.Conferences {
		r.fail("%d conferences run after booking %d", len(base), r.opts.Conferences)
	}
	r.logf("booked %d conferences that must run throughout", len(base))

	c := newClient(d.apiAddrs(), apiToken)
	l := newLoad(c, rate, window)
	loadCtx, stopLoad := context.WithCancel(ctx)
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		l.run(loadCtx)
	}()
	r.logf("client: %d operations a second, keeping %d conferences of its own (times from %.3fs)", rate, window, time.Since(r.start).Seconds())

	for _, s := range d.services {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		opsBefore := l.done()
		if err := s.proc.stop(20 * time.Second); err != nil {
			r.fail("%v", err)
		}
		stopped := time.Since(t0)
		if err := r.d.startService(ctx, s); err != nil {
			r.fail("%s did not start again: %v", s.name, err)
			continue
		}
		ready := time.Since(t0)
		// The conferences booked before the roll run, each once, before the
		// next process restarts.
		bm, _ := r.settleBase(ctx, "restarted "+s.name, base)
		rec := time.Since(t0)
		// The client meets the restarted process: a second's worth of
		// operations before the next one restarts.
		r.waitFor(ctx, "the client's operations after restarting "+s.name, func() bool { return l.done() >= opsBefore+rate })
		r.logf("restarted %s: stopped in %s, ready %s after SIGTERM, booked conferences all running after %s", s.name, ms(stopped), ms(ready), ms(rec))
		r.record(bm, rec)
	}
	stopLoad()
	<-loaded
	own, uncertain := l.running()
	want := base.clone()
	for k, v := range own {
		want[k] = v
	}
	r.ignore = uncertain
	m, _ = r.settle(ctx, "after the roll", want)
	r.record(m, 0)
	l.mu.Lock()
	ops, failures, pause := l.ops, append([]string(nil), l.failures...), l.maxPause
	l.mu.Unlock()
	for _, f := range failures {
		r.failed = append(r.failed, "client: "+f)
	}
	res := r.result()
	lost := m.Count().Lost
	res.Figures = []string{
		fmt.Sprintf("client: %d operations, %d failed (target 0); %d conferences lost (target 0); longest pause %s; turned to the other API %d times",
			ops, len(failures), lost, ms(pause), c.switched.Load()),
	}
	return res, nil
}

// settleBase waits until every conference of base runs once on a live
// node (the client's own may be on their way meanwhile).
func (r *run) settleBase(ctx context.Context, step string, base Census) (Measure, bool) {
	deadline := time.Now().Add(r.opts.SettleTimeout)
	var last Measure
	for {
		last = Measure{Step: step, Want: base.clone()}
		if err := r.d.died(); err != nil {
			last.Audit = err.Error()
			return last, false
		}
		s, err := r.d.obs.take(ctx, r.d.liveNodes())
		if err == nil {
			last.Running, last.Waiting, last.Copies = Census{}, map[string]string{}, map[string]int{}
			copies := s.Copies()
			for e := range base {
				if id, ok := s.Running[e]; ok {
					last.Running[e] = id
				}
				if st, ok := s.Waiting[e]; ok {
					last.Waiting[e] = st
				}
				if n, ok := copies[e]; ok {
					last.Copies[e] = n
				}
			}
			if len(Judge(last)) == 0 {
				return last, true
			}
		} else {
			last.Audit = fmt.Sprintf("no complete view of the platform: %v", err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return last, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}
