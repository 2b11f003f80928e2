package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/redisserver"
	"github.com/convene/convene/internal/sip"
	"github.com/convene/convene/internal/sip/sipp"
	"github.com/convene/convene/internal/sip/sipplugin"
)

// SIP is `convene bench sip`: a SIP node driven by sipp as callers and
// callees, with digest authentication and call records on, and Kamailio
// beside it when installed.
type SIP struct {
	StepCalls   int
	FromRate    float64
	MaxRate     float64
	Pairs       int
	Hold        time.Duration
	StepRegs    int
	MaxRegRate  float64
	Rounds      int
	Kamailio    string // auto, on or off
	KamChildren int    // 0: 1 on SQLite, 4 on PostgreSQL
	RedisURL    string
	// Postgres is a PostgreSQL server's admin URL: each round of each
	// server keeps its records in a database of its own made there
	// (Convene's call records, Kamailio's subscribers and accounting).
	// Empty: SQLite files.
	Postgres   string
	CPUProfile string
	Log        *slog.Logger
}

// sipTarget is a SIP server under test: Convene's node or Kamailio.
type sipTarget interface {
	name() string
	addr() string
	// subscribers adds users with the password pw-<user>.
	subscribers(ctx context.Context, users []string) error
	// records are the Call-IDs of the calls since since whose records
	// are written: Convene's call records, connected and ended;
	// Kamailio's INVITE (200) and BYE accounting rows.
	records(ctx context.Context, since time.Time) (map[string]bool, error)
	// recordsNote says how the target records calls.
	recordsNote() string
	stop()
}

// sipStep is one step of a ramp: what sipp counted.
type sipStep struct {
	rate        float64
	ok, failed  int
	perSec      float64
	rtt         []time.Duration
	description string
	callIDs     []string // of the calls completed, when every call was
}

// sipFigures are one round's results of one target.
type sipFigures struct {
	target      string
	reg, calls  sipStep  // the best clean steps
	completed   []string // Call-IDs of the calls of every clean step
	written     int      // of them, with their records
	lost        int      // of them, without
	recordsNote string
}

// Run measures the SIP node, and Kamailio beside it, and prints the
// figures.
func (b *SIP) Run(ctx context.Context, out, errw io.Writer) error {
	if b.StepCalls < 1 || b.Pairs < 1 || b.FromRate <= 0 || b.MaxRate < b.FromRate || b.Rounds < 1 || b.StepRegs < 0 {
		return errors.New("bench sip: --step-calls, --pairs, --from-rate and --rounds must be positive, --max-rate at least --from-rate")
	}
	if _, err := sipp.Bin(); err != nil {
		return fmt.Errorf("bench sip: %w", err)
	}
	kam := false
	switch b.Kamailio {
	case "off":
	case "on", "auto":
		_, err := kamailioBin(b.Postgres != "")
		if err != nil && b.Kamailio == "on" {
			return fmt.Errorf("bench sip: %w", err)
		}
		kam = err == nil
		if !kam {
			fmt.Fprintf(out, "Kamailio is not installed (%v): Convene alone\n", err)
		}
	default:
		return fmt.Errorf("bench sip: --kamailio %q: use auto, on or off", b.Kamailio)
	}
	fmt.Fprintf(out, "bench sip: ramps from %.0f/s by half each step to %.0f calls/s (%d calls a step) and %.0f REGISTERs/s (%d a step); %d sipp callers and %d callees, hold %s; %d round(s)\n",
		b.FromRate, b.MaxRate, b.StepCalls, b.MaxRegRate, b.StepRegs, b.Pairs, b.Pairs, b.Hold, b.Rounds)
	stopProfile, err := StartCPUProfile(b.CPUProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	var all []sipFigures
	for round := 1; round <= b.Rounds; round++ {
		starts := []func(context.Context, string) (sipTarget, error){b.startConvene}
		if kam {
			starts = append(starts, b.startKamailio)
		}
		for _, start := range starts {
			if err := ctx.Err(); err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "convene-bench-sip-")
			if err != nil {
				return err
			}
			t, err := start(ctx, dir)
			if err != nil {
				os.RemoveAll(dir)
				return err
			}
			fig, err := b.round(ctx, out, t, dir)
			t.stop()
			os.RemoveAll(dir)
			if err != nil {
				return err
			}
			fig.recordsNote = t.recordsNote()
			printSIPFigures(out, round, fig)
			all = append(all, fig)
		}
	}
	printSIPSummary(out, all)
	return nil
}

// ramp runs steps at growing rates until one fails or the rate passes
// max, and returns the best clean step. When the first step is not
// clean, it halves the rate until one is (down to 5/s): the rate the
// server carries then, found from above. Rate 0: none was clean.
func (b *SIP) ramp(ctx context.Context, out io.Writer, target, what string, max float64, step func(rate float64) (sipStep, error)) (sipStep, error) {
	var best sipStep
	down := false
	for rate := b.FromRate; rate <= max; {
		s, err := step(rate)
		if err != nil {
			return best, err
		}
		fmt.Fprintf(out, "%-8s %-9s offered %6.0f/s  carried %7.1f/s  %d done, %d failed%s\n", target, what, rate, s.perSec, s.ok, s.failed, s.description)
		if err := ctx.Err(); err != nil {
			return best, err
		}
		clean := s.failed == 0 && s.ok > 0 && s.perSec >= 0.9*rate // no failure, and kept up with the offer
		switch {
		case clean && s.perSec > best.perSec:
			best = s
		case !clean && best.ok == 0 && rate/2 >= 5:
			down = true
			rate /= 2
			continue
		}
		if !clean || down {
			break
		}
		rate *= 1.5
	}
	return best, nil
}

// split is the share of n of sipp process i of k.
func split(n, i, k int) int {
	m := n / k
	if i < n%k {
		m++
	}
	return m
}

// round runs the REGISTER and call ramps against t.
func (b *SIP) round(ctx context.Context, out io.Writer, t sipTarget, dir string) (sipFigures, error) {
	f := sipFigures{target: t.name()}
	var callers, callees, regUsers []string
	for i := range b.Pairs {
		callers = append(callers, strconv.Itoa(5000+i))
		callees = append(callees, strconv.Itoa(6000+i))
	}
	for i := range max(b.Pairs, min(b.StepRegs, 500)) {
		regUsers = append(regUsers, strconv.Itoa(7000+i))
	}
	if err := t.subscribers(ctx, slices.Concat(callers, callees, regUsers)); err != nil {
		return f, err
	}
	steps := 0
	var err error
	if b.StepRegs > 0 {
		f.reg, err = b.ramp(ctx, out, t.name(), "REGISTER", b.MaxRegRate, func(rate float64) (sipStep, error) {
			steps++
			return b.step(ctx, b.StepRegs, rate, func(i int, calls int, rate float64) sipp.Options {
				var lines []string
				for j := i; j < len(regUsers); j += b.Pairs {
					lines = append(lines, sipp.Credentials(regUsers[j], "pw-"+regUsers[j]))
				}
				return sipp.Options{Scenario: sipp.Register, Target: t.addr(), Lines: lines, Calls: calls, Rate: rate,
					Limit: 5000, Keys: map[string]string{"expires": "3600"}, Dir: mkdir(dir, fmt.Sprintf("regs-%d-%d", steps, i))}
			})
		})
		if err != nil {
			return f, err
		}
	}
	// The callees register, then answer on the ports they registered.
	var uas []*sipp.Run
	defer func() {
		for _, r := range uas {
			r.Stop()
		}
	}()
	for _, u := range callees {
		reg, err := sipp.Start(sipp.Options{Scenario: sipp.Register, Target: t.addr(), Lines: []string{sipp.Credentials(u, "pw-"+u)},
			Keys: map[string]string{"expires": "3600"}, Timeout: 30 * time.Second, Dir: mkdir(dir, "reg-"+u)})
		if err != nil {
			return f, err
		}
		if _, err := reg.Wait(ctx); err != nil {
			return f, fmt.Errorf("%s: callee %s did not register: %w", t.name(), u, err)
		}
		r, err := sipp.Start(sipp.Options{Scenario: sipp.UAS, Port: reg.Port, Service: u, Dir: mkdir(dir, "uas-"+u)})
		if err != nil {
			return f, err
		}
		uas = append(uas, r)
	}
	since := time.Now().Add(-time.Second)
	steps = 0
	f.calls, err = b.ramp(ctx, out, t.name(), "calls", b.MaxRate, func(rate float64) (sipStep, error) {
		steps++
		s, err := b.step(ctx, b.StepCalls, rate, func(i int, calls int, rate float64) sipp.Options {
			lines := []string{sipp.Credentials(callers[i], "pw-"+callers[i]) + ";" + callees[i]}
			return sipp.Options{Scenario: sipp.UAC, Target: t.addr(), Lines: lines, Calls: calls, Rate: rate,
				Limit: 5000, Pause: b.Hold, Dir: mkdir(dir, fmt.Sprintf("uac-%d-%d", steps, i))}
		})
		if s.failed == 0 {
			f.completed = append(f.completed, s.callIDs...)
		}
		s.description = "  INVITE->200 " + sipPcts(s.rtt)
		return s, err
	})
	if err != nil {
		return f, err
	}
	// Records: those of every call of the clean steps, within 30 s.
	deadline := time.Now().Add(30 * time.Second)
	for {
		have, err := t.records(ctx, since)
		if err != nil {
			return f, err
		}
		f.written = 0
		for _, id := range f.completed {
			if have[id] {
				f.written++
			}
		}
		f.lost = len(f.completed) - f.written
		if f.lost == 0 || time.Now().After(deadline) {
			return f, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// step runs one step: n calls at rate, shared by --pairs sipp
// processes, each given its options by opts. A step that has not ended
// well after its calls should have is stopped, its calls unfinished
// counted failed.
func (b *SIP) step(ctx context.Context, n int, rate float64, opts func(i, calls int, rate float64) sipp.Options) (sipStep, error) {
	s := sipStep{rate: rate}
	due := time.Duration(float64(n)/rate*float64(time.Second)) + b.Hold + 20*time.Second
	results, err := runSipps(ctx, b.Pairs, func(i int) sipp.Options {
		o := opts(i, split(n, i, b.Pairs), rate/float64(b.Pairs))
		o.Timeout = due
		return o
	})
	if err != nil {
		return s, err
	}
	var longest time.Duration
	for _, r := range results {
		s.ok += r.Successful
		s.failed += r.Failed
		s.rtt = append(s.rtt, r.RTT...)
		longest = max(longest, r.Elapsed)
	}
	s.failed = max(s.failed, n-s.ok)
	if s.failed == 0 {
		for _, r := range results {
			s.callIDs = append(s.callIDs, r.Run.CallIDs(r.Successful)...)
		}
	}
	if longest > 0 {
		s.perSec = float64(s.ok) / longest.Seconds()
	}
	return s, nil
}

// runSipps runs n sipp processes at once and waits for them all. A run
// with failed calls is no error here: the failures are counted.
func runSipps(ctx context.Context, n int, opts func(i int) sipp.Options) ([]sipp.Result, error) {
	runs := make([]*sipp.Run, n)
	for i := range n {
		r, err := sipp.Start(opts(i))
		if err != nil {
			for _, s := range runs[:i] {
				s.Stop()
			}
			return nil, err
		}
		runs[i] = r
	}
	out := make([]sipp.Result, n)
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Go(func() { out[i], _ = r.Wait(ctx) })
	}
	wg.Wait()
	return out, ctx.Err()
}

func mkdir(parent, name string) string {
	d := filepath.Join(parent, name)
	_ = os.MkdirAll(d, 0o700)
	return d
}

func printSIPFigures(w io.Writer, round int, f sipFigures) {
	fmt.Fprintf(w, "%-8s round %d  calls/s %7.1f  INVITE->200 %s  REGISTER/s %7.1f  records written %d lost %d (of the %d calls of the clean steps)\n",
		f.target, round, f.calls.perSec, sipPcts(f.calls.rtt), f.reg.perSec, f.written, f.lost, len(f.completed))
}

// printSIPSummary prints each target's best round and the ratios.
func printSIPSummary(w io.Writer, all []sipFigures) {
	best := map[string]sipFigures{}
	var order []string
	for _, f := range all {
		b, ok := best[f.target]
		if !ok {
			order = append(order, f.target)
		}
		if !ok || f.calls.perSec > b.calls.perSec {
			best[f.target] = f
		}
	}
	fmt.Fprintln(w, "summary: each server's best round, every figure from a step without a failure that kept up with the offer")
	for _, name := range order {
		f := best[name]
		fmt.Fprintf(w, "%-8s calls/s %7.1f  INVITE->200 %s  REGISTER/s %7.1f  records written %d lost %d  (%s)\n",
			name, f.calls.perSec, sipPcts(f.calls.rtt), f.reg.perSec, f.written, f.lost, f.recordsNote)
	}
	c, okC := best["convene"]
	k, okK := best["kamailio"]
	if okC && okK && k.calls.perSec > 0 {
		reg := "-"
		if k.reg.perSec > 0 {
			reg = fmt.Sprintf("%.2f", c.reg.perSec/k.reg.perSec)
		}
		fmt.Fprintf(w, "ratio    convene/kamailio  calls/s %.2f  REGISTER/s %s\n", c.calls.perSec/k.calls.perSec, reg)
	}
}

// sipPcts is "p50 X ms p99 Y ms".
func sipPcts(lat []time.Duration) string {
	if len(lat) == 0 {
		return "p50 - p99 -"
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("p50 %d ms p99 %d ms", at(.5).Milliseconds(), at(.99).Milliseconds())
}

// conveneTarget is a SIP node run by a host, as `convene sip` runs one.
type conveneTarget struct {
	pg      *pgDatabase
	h       *host.Host
	db      *records.DB
	sipAddr string
	stopRS  func()
}

func (b *SIP) startConvene(ctx context.Context, dir string) (sipTarget, error) {
	t := &conveneTarget{}
	url := b.RedisURL
	if url == "" {
		if _, err := redisserver.Binary(); err != nil {
			return nil, fmt.Errorf("bench sip: %w (or give --redis)", err)
		}
		rs, err := redisserver.Start(redisserver.Options{Dir: mkdir(dir, "redis")})
		if err != nil {
			return nil, err
		}
		url, t.stopRS = rs.URL(), rs.Kill
	}
	port, err := sipp.FreePort()
	if err != nil {
		return nil, err
	}
	t.sipAddr = "127.0.0.1:" + strconv.Itoa(port)
	recordsURL := filepath.Join(dir, "records.db")
	if b.Postgres != "" {
		if t.pg, err = newPGDatabase(ctx, b.Postgres, "convene"); err != nil {
			t.stop()
			return nil, err
		}
		recordsURL = t.pg.URL()
	}
	doc := map[string]any{
		"host": map[string]any{"name": "bench-sip", "data_dir": dir},
		"infrastructure": map[string]any{
			"store":   map[string]any{"plugin": "convene.store.redis", "url": url},
			"records": map[string]any{"plugin": "convene.records.sql", "url": recordsURL},
		},
		"servers": map[string]any{
			"sip": map[string]any{"plugin": sipplugin.ProxyID, "name": "sip-bench", "listen": t.sipAddr, "bus": "",
				// Debian's sipp answers only the first challenge, and only MD5.
				"algorithms": []string{"MD5", "SHA-256"}},
		},
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	f, err := host.Parse("bench sip", data)
	if err != nil {
		return nil, err
	}
	if t.h, err = host.New(f, host.Options{Log: b.Log}); err != nil {
		return nil, err
	}
	if err := t.h.Start(ctx); err != nil {
		t.stop()
		return nil, err
	}
	inst, ok := t.h.Instance("records")
	if !ok {
		t.stop()
		return nil, errors.New("bench sip: the records database is not running")
	}
	t.db, _ = inst.(interface{ Resource() any }).Resource().(*records.DB)
	if t.db == nil {
		t.stop()
		return nil, errors.New("bench sip: the records resource is not a records database")
	}
	return t, nil
}

func (t *conveneTarget) name() string { return "convene" }
func (t *conveneTarget) addr() string { return t.sipAddr }
func (t *conveneTarget) recordsNote() string {
	if t.pg != nil {
		return "call records with their log lines and roll-ups, PostgreSQL"
	}
	return "call records with their log lines and roll-ups, SQLite"
}

func (t *conveneTarget) subscribers(ctx context.Context, users []string) error {
	for _, u := range users {
		s, err := sip.NewSubscriber(u, "pw-"+u, config.DefaultSIPDomain)
		if err != nil {
			return err
		}
		if _, _, err := t.db.PutSIPSubscriber(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (t *conveneTarget) records(ctx context.Context, since time.Time) (map[string]bool, error) {
	calls, err := t.db.CallRecords(ctx, records.CallFilter{From: since})
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(calls))
	for _, c := range calls {
		if c.Connected && !c.End.IsZero() {
			have[c.CallID] = true
		}
	}
	return have, nil
}

func (t *conveneTarget) stop() {
	if t.h != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = t.h.Stop(ctx)
		cancel()
	}
	if t.stopRS != nil {
		t.stopRS()
	}
	if t.pg != nil {
		t.pg.drop()
	}
}

// kamailioChildren is Kamailio's UDP workers: as asked, or 1 on SQLite
// (db_sqlite's workers lock each other out) and 4 on PostgreSQL.
func (b *SIP) kamailioChildren() int {
	switch {
	case b.KamChildren > 0:
		return b.KamChildren
	case b.Postgres != "":
		return 4
	}
	return 1
}
