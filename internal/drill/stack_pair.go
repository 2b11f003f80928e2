package drill

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bench"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/scheduler"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/store"
)

// runPlatforms is the two-platform drill: A fails under load, B takes over,
// A's tenants book on B, A comes back, A's CM ends some moved conferences.
func (d *stackDrill) runPlatforms(ctx context.Context) error {
	d.start = time.Now()
	nodes := max(2, d.Nodes/2)
	p, err := bench.StartPair(ctx, nodes, d.Conferences*2, d.Conferences*4, d.Log)
	if err != nil {
		return err
	}
	defer p.Stop()
	loader := bench.Loader{Concurrency: 16}
	if errs, err := loader.DriveDomain(ctx, p.ClientA, "tenant-a", d.Conferences, nil); err != nil || len(errs) > 0 {
		return fmt.Errorf("booking on A: %v %v", err, errs)
	}
	if errs, err := loader.DriveDomain(ctx, p.ClientB, "tenant-b", d.Conferences/2, nil); err != nil || len(errs) > 0 {
		return fmt.Errorf("booking on B: %v %v", err, errs)
	}
	d.logf("platforms up: A with %d conferences, its backup B with %d; %d media nodes each", d.Conferences, d.Conferences/2, nodes)
	_, complaint := d.settlePair(ctx, p, "booked", p.A, p.B)
	// Tenant A's conferences must all survive, the same ones: read once
	// booking settled. (Tenant B books and ends under load meanwhile.)
	wantA, _, err := takeCensus(ctx, p.A.Store, "tenant-a")
	if err != nil {
		return err
	}
	if len(wantA) != d.Conferences {
		d.fail("tenant A has %d conferences running after booking %d", len(wantA), d.Conferences)
	}
	d.checkA(ctx, p, "booked", wantA, p.A.Store, complaint)

	// Load on B throughout: tenant B books and ends conferences.
	var booked, ended atomic.Int64
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				c, err := p.ClientB.CreateConference(loadCtx, apiclient.CreateConferenceRequest{Name: "load", Domain: "tenant-b", Scale: 8, Resolution: "720p", DurationMinutes: 30})
				if err != nil {
					continue
				}
				booked.Add(1)
				if p.ClientB.EndConference(loadCtx, c.E164) == nil {
					ended.Add(1)
				}
			}
		}()
	}

	// 1. Platform A fails.
	t0 := time.Now()
	p.A.Crash()
	d.logf("platform A crashed (nodes, schedulers, bus); its store stays as B's copy")
	d.waitFor(ctx, "B's PMS to see A failed", func() bool { return p.MasterState() == protocol.PlatformAbnormal })
	_, since := p.MasterStateSince()
	d.logf("  B's PMS declared A failed after %s", bench.Ms(since.Sub(t0)))
	d.waitFor(ctx, "A's conferences running on B", func() bool { return d.allOfAOnB(ctx, p) })
	d.logf("  all of A's %d conferences run on B, %s after the crash", d.Conferences, bench.Ms(time.Since(t0)))
	// The load covered the failure; audits need a still platform.
	stopLoad()
	wg.Wait()
	d.logf("load on B during the failure: tenant B booked %d and ended %d conferences", booked.Load(), ended.Load())
	_, complaint = d.settlePair(ctx, p, "taken over by B", p.B)
	d.checkA(ctx, p, "A failed over to B", wantA, p.B.PeerStore("plat-a"), complaint)

	// 2. A's tenants book on B.
	var extra []string
	for i := range 10 {
		c, err := p.ClientB.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: fmt.Sprintf("on B for A %d", i), Domain: "tenant-a", Scale: 8, Resolution: "720p", DurationMinutes: 30})
		if err != nil {
			d.fail("booking for A's tenant on B: %v", err)
			break
		}
		if !strings.HasPrefix(c.E164, "66") {
			d.fail("booking for A's tenant got %s, not a number in A's segment 66", c.E164)
		}
		extra = append(extra, c.E164)
		wantA[c.E164] = identOf(protocol.Conference{Domain: c.Domain, Scale: c.Scale, Resolution: c.Resolution})
	}
	d.logf("booked %d conferences for A's tenant on B (numbers in A's segment, data in A's store)", len(extra))

	// 3. A comes back: the moved conferences stay on B.
	before := d.placementOfA(ctx, p)
	t0 = time.Now()
	if err := p.RestartA(ctx); err != nil {
		return err
	}
	d.logf("platform A restarted: every service ready after %s", bench.Ms(time.Since(t0)))
	d.waitFor(ctx, "B's PMS to see A back", func() bool { return p.MasterState() == protocol.PlatformNormal })
	_, since = p.MasterStateSince()
	d.logf("  B's PMS saw A back after %s: B hands A's service back", bench.Ms(since.Sub(t0)))
	// Nothing must move back: wait until B's scheduler has applied A's
	// recovery and run two restore passes since, and A's has started and
	// done the same.
	d.waitLooked(ctx, p.B, "B's scheduler to hand A's service back", func(a scheduler.Activity) bool {
		for _, pl := range a.Platforms.Masters {
			if pl.Platform == "plat-a" {
				return pl.State == protocol.PlatformNormal
			}
		}
		return false
	})
	d.waitLooked(ctx, p.A, "A's scheduler to start", func(scheduler.Activity) bool { return true })
	if n := moved(before, d.placementOfA(ctx, p)); n > 0 {
		d.fail("failback moved %d conferences", n)
	}
	_, complaint = d.settlePair(ctx, p, "nothing moved back", p.A, p.B)
	d.checkA(ctx, p, "A back", wantA, p.A.Store, complaint)

	// 4. A's CM ends some moved conferences; they leave B's nodes.
	var toEnd []string
	for e := range before {
		if len(toEnd) == 20 {
			break
		}
		toEnd = append(toEnd, e)
	}
	for _, e := range toEnd {
		if err := p.ClientA.EndConference(ctx, e); err != nil {
			d.fail("ending %s from A: %v", e, err)
			continue
		}
		delete(wantA, e)
	}
	d.logf("A's CM ended %d of the moved conferences", len(toEnd))
	running, complaint := d.settlePair(ctx, p, "after ending from A", p.A, p.B)
	d.checkA(ctx, p, "moved conferences ended from A", wantA, p.A.Store, complaint)
	// Tenant A's conferences were judged one by one above; tenant B's: as
	// many as its list holds (a create cut off by the end of the load may
	// have completed unseen by its client), none doubled; each tenant's
	// licence counts what it runs.
	confsA, errA := p.A.Store.DomainConferences(ctx, "tenant-a")
	confsB, errB := p.B.Store.DomainConferences(ctx, "tenant-b")
	if errA != nil || errB != nil {
		return fmt.Errorf("reading the tenants' conferences: %v %v", errA, errB)
	}
	if running != len(confsA)+len(confsB) {
		d.fail("%d conferences run; the tenants hold %d", running, len(confsA)+len(confsB))
	}
	u, err := p.A.Store.License(ctx, "tenant-a")
	if err == nil && u.InUse["8_720p"] != len(wantA) {
		d.fail("tenant A counts %d conferences; %d run", u.InUse["8_720p"], len(wantA))
	}
	d.logf("tenant A: %d conferences, counted %d times against its licence; tenant B: %d", len(confsA), u.InUse["8_720p"], len(confsB))
	return nil
}

func (d *stackDrill) allOfAOnB(ctx context.Context, p *bench.Pair) bool {
	st := p.B.PeerStore("plat-a")
	if st == nil {
		return false
	}
	confs, err := st.AllConferences(ctx)
	if err != nil {
		return false
	}
	for _, c := range confs {
		if c.State != protocol.StateRunning || c.RealPlatform != "plat-b" {
			return false
		}
	}
	return true
}

func (d *stackDrill) placementOfA(ctx context.Context, p *bench.Pair) map[string]string {
	out := map[string]string{}
	if st := p.B.PeerStore("plat-a"); st != nil {
		if confs, err := st.AllConferences(ctx); err == nil {
			for _, c := range confs {
				out[c.E164] = c.Node
			}
		}
	}
	return out
}

// settlePair waits until both platforms' invariants hold and answers how
// many conferences run, and the audit's complaint when they do not hold
// within 30 s.
func (d *stackDrill) settlePair(ctx context.Context, p *bench.Pair, what string, live ...*stack.Stack) (int, string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		running, problems, err := p.Audit(ctx, live...)
		if err == nil && len(problems) == 0 {
			d.logf("  audit: %d conferences running across the platforms; every invariant holds (%s)", running, what)
			return running, ""
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return running, fmt.Sprintf("%s: audit failed: %v", what, err)
			}
			return running, fmt.Sprintf("%s: %d problems, first: %v", what, len(problems), bench.First3(problems))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkA measures tenant A's conferences in A's store (st: A's own, or
// B's connection to it) against those that must run, on both platforms'
// nodes.
func (d *stackDrill) checkA(ctx context.Context, p *bench.Pair, step string, want Census, st *store.Store, complaint string) {
	if st == nil {
		d.fail("%s: platform A's store is not reachable", step)
		return
	}
	d.record(measureStep(ctx, step, want, st, complaint, []*stack.Stack{p.A, p.B}, "tenant-a"))
}
