package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/redisserver"
	"github.com/convene/convene/internal/sip"
	"github.com/convene/convene/internal/sip/sipp"
	"github.com/convene/convene/internal/sip/sipplugin"
)

func init() { benchCommands = append(benchCommands, benchSIPCmd) }

// sipBench is `convene bench sip`.
type sipBench struct {
	stepCalls   int
	fromRate    float64
	maxRate     float64
	pairs       int
	hold        time.Duration
	stepRegs    int
	maxRegRate  float64
	rounds      int
	kamailio    string
	kamChildren int
	redisURL    string
	logLevel    string
	cpuProfile  string
}

func benchSIPCmd() *cobra.Command {
	var b sipBench
	cmd := &cobra.Command{
		Use:   "sip",
		Short: "Measure the SIP edge with sipp: calls/s, INVITE->200, REGISTER/s, call records; and Kamailio beside it",
		Long: `bench sip drives a SIP node with sipp (Debian's sip-tester), as callers and
callees at once, with digest authentication and call records on: the
node's store is a redis-server this command starts (or --redis), its
records a fresh SQLite file.

Each measurement is a ramp: steps of --step-calls calls (or REGISTERs)
offered at a rate that starts at --from-rate and grows by half each step,
until a step has a failure, or carries less than 90% of the rate offered
(the server fell behind), or the rate passes --max-rate. The figure kept
is the best step before: what the server carries cleanly.

  REGISTER/s  REGISTERs, each challenged 401 and answered with digest,
              by --pairs sipp processes;
  calls/s     --pairs callees register and answer on their own sipp;
              --pairs callers call them, each INVITE challenged 407 and
              answered, record-routed, held for --hold and hung up;
              INVITE->200 p50 and p99 are those of the best step, from
              the first INVITE, through the challenge, to the 200;
  records     the completed calls of every step whose record is in the
              records database within 30 s (written), and those whose
              record is not (lost).

When kamailio (Debian's kamailio and kamailio-sqlite-modules) is
installed, Kamailio 5.6 runs the same ramps with the same features right
after, the two alternating --rounds times: digest auth (auth_db against a
SQLite subscriber table, qop=auth with nonce counts checked), a registrar,
record-route with loose routing, and accounting to SQL (acc writing each
call's INVITE and BYE to SQLite through db_sqlite, in WAL mode). db_sqlite
sets no busy timeout, so Kamailio's workers fail each other's queries
("database is locked") when there are several: it runs
--kamailio-children workers, one by default. The summary prints each
server's best round and the ratios.

Everything runs on loopback on this machine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return b.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&b.stepCalls, "step-calls", 1500, "calls per step of the ramp")
	f.Float64Var(&b.fromRate, "from-rate", 100, "the first step's rate (calls or REGISTERs per second, in all)")
	f.Float64Var(&b.maxRate, "max-rate", 3000, "the ramp of calls stops past this rate")
	f.IntVar(&b.pairs, "pairs", 2, "sipp callers and as many callees (one sipp saturates near 1,000 calls/s)")
	f.DurationVar(&b.hold, "hold", 0, "how long each call is held before its BYE")
	f.IntVar(&b.stepRegs, "step-registrations", 1500, "REGISTERs per step of the ramp (0: no REGISTER ramp)")
	f.Float64Var(&b.maxRegRate, "max-register-rate", 4000, "the ramp of REGISTERs stops past this rate")
	f.IntVar(&b.rounds, "rounds", 2, "rounds, each Convene then Kamailio")
	f.StringVar(&b.kamailio, "kamailio", "auto", "auto (when installed), on, or off")
	f.IntVar(&b.kamChildren, "kamailio-children", 1, "Kamailio's UDP worker processes")
	f.StringVar(&b.redisURL, "redis", "", "the store of the node (default: a redis-server this command starts)")
	f.StringVar(&b.logLevel, "log-level", "error", "the node's log level")
	f.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (the Convene node) to this file")
	return cmd
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

func (b *sipBench) run(ctx context.Context, out, errw io.Writer) error {
	if b.stepCalls < 1 || b.pairs < 1 || b.fromRate <= 0 || b.maxRate < b.fromRate || b.rounds < 1 || b.stepRegs < 0 {
		return errors.New("bench sip: --step-calls, --pairs, --from-rate and --rounds must be positive, --max-rate at least --from-rate")
	}
	if _, err := sipp.Bin(); err != nil {
		return fmt.Errorf("bench sip: %w", err)
	}
	kam := false
	switch b.kamailio {
	case "off":
	case "on", "auto":
		_, err := kamailioBin()
		if err != nil && b.kamailio == "on" {
			return fmt.Errorf("bench sip: %w", err)
		}
		kam = err == nil
		if !kam {
			fmt.Fprintf(out, "Kamailio is not installed (%v): Convene alone\n", err)
		}
	default:
		return fmt.Errorf("bench sip: --kamailio %q: use auto, on or off", b.kamailio)
	}
	fmt.Fprintf(out, "bench sip: ramps from %.0f/s by half each step to %.0f calls/s (%d calls a step) and %.0f REGISTERs/s (%d a step); %d sipp callers and %d callees, hold %s; %d round(s)\n",
		b.fromRate, b.maxRate, b.stepCalls, b.maxRegRate, b.stepRegs, b.pairs, b.pairs, b.hold, b.rounds)
	stopProfile, err := startCPUProfile(b.cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	var all []sipFigures
	for round := 1; round <= b.rounds; round++ {
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
func (b *sipBench) ramp(ctx context.Context, out io.Writer, target, what string, max float64, step func(rate float64) (sipStep, error)) (sipStep, error) {
	var best sipStep
	down := false
	for rate := b.fromRate; rate <= max; {
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
func (b *sipBench) round(ctx context.Context, out io.Writer, t sipTarget, dir string) (sipFigures, error) {
	f := sipFigures{target: t.name()}
	var callers, callees, regUsers []string
	for i := range b.pairs {
		callers = append(callers, strconv.Itoa(5000+i))
		callees = append(callees, strconv.Itoa(6000+i))
	}
	for i := range max(b.pairs, min(b.stepRegs, 500)) {
		regUsers = append(regUsers, strconv.Itoa(7000+i))
	}
	if err := t.subscribers(ctx, slices.Concat(callers, callees, regUsers)); err != nil {
		return f, err
	}
	steps := 0
	var err error
	if b.stepRegs > 0 {
		f.reg, err = b.ramp(ctx, out, t.name(), "REGISTER", b.maxRegRate, func(rate float64) (sipStep, error) {
			steps++
			return b.step(ctx, b.stepRegs, rate, func(i int, calls int, rate float64) sipp.Options {
				var lines []string
				for j := i; j < len(regUsers); j += b.pairs {
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
	f.calls, err = b.ramp(ctx, out, t.name(), "calls", b.maxRate, func(rate float64) (sipStep, error) {
		steps++
		s, err := b.step(ctx, b.stepCalls, rate, func(i int, calls int, rate float64) sipp.Options {
			lines := []string{sipp.Credentials(callers[i], "pw-"+callers[i]) + ";" + callees[i]}
			return sipp.Options{Scenario: sipp.UAC, Target: t.addr(), Lines: lines, Calls: calls, Rate: rate,
				Limit: 5000, Pause: b.hold, Dir: mkdir(dir, fmt.Sprintf("uac-%d-%d", steps, i))}
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
func (b *sipBench) step(ctx context.Context, n int, rate float64, opts func(i, calls int, rate float64) sipp.Options) (sipStep, error) {
	s := sipStep{rate: rate}
	due := time.Duration(float64(n)/rate*float64(time.Second)) + b.hold + 20*time.Second
	results, err := runSipps(ctx, b.pairs, func(i int) sipp.Options {
		o := opts(i, split(n, i, b.pairs), rate/float64(b.pairs))
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
	h       *host.Host
	db      *records.DB
	sipAddr string
	stopRS  func()
}

func (b *sipBench) startConvene(ctx context.Context, dir string) (sipTarget, error) {
	t := &conveneTarget{}
	url := b.redisURL
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
	doc := map[string]any{
		"host": map[string]any{"name": "bench-sip", "data_dir": dir},
		"infrastructure": map[string]any{
			"store":   map[string]any{"plugin": "convene.store.redis", "url": url},
			"records": map[string]any{"plugin": "convene.records.sql", "url": filepath.Join(dir, "records.db")},
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
	if t.h, err = host.New(f, host.Options{Log: newLogger(os.Stderr, b.logLevel)}); err != nil {
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
}
