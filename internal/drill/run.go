package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Options tune a drill.
type Options struct {
	// Binary is the convene binary that runs the hosts (and prints the
	// bus's authorization); required.
	Binary string
	// Conferences to book; Nodes, the simulated media nodes.
	Conferences int
	Nodes       int
	// LogLevel of the hosts, whose logs go to files in Dir.
	LogLevel string
	// Dir keeps the deployment's files and the processes' logs; default
	// a temporary directory, removed after a drill that passed.
	Dir string
	// Out is where the timeline and the figures go.
	Out io.Writer
	// SettleTimeout bounds the wait, after each step, for every
	// conference to run once again; default 60 s.
	SettleTimeout time.Duration
}

// Step is one step's figures.
type Step struct {
	Name string
	// Recovered is how long after the fault every conference ran once
	// again, with the service back (0 when it did not happen or the
	// step injected no fault).
	Recovered time.Duration
	Counts
}

// Result is what a drill found: each step's figures, and every failure;
// none means the drill passed.
type Result struct {
	Steps    []Step
	Failures []string
	// Figures are the drill's own closing figures (the rolling drill's
	// client), printed after the steps.
	Figures []string
	// Final is the last step's measure: what had to run at the end, and
	// what did.
	Final Measure
}

// Passed reports whether nothing was lost, doubled, left pending or
// failed.
func (r Result) Passed() bool { return len(r.Failures) == 0 }

func (o *Options) defaults() error {
	if o.Binary == "" {
		return errors.New("drill: no convene binary to run the hosts with")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	if o.SettleTimeout == 0 {
		o.SettleTimeout = 60 * time.Second
	}
	return nil
}

// workDir is the drill's directory and what to do with it at the end:
// remove it when the drill passed and it was made for the drill.
func (o *Options) workDir(kind string) (dir string, done func(passed bool), err error) {
	if o.Dir != "" {
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			return "", nil, err
		}
		return o.Dir, func(bool) {}, nil
	}
	dir, err = os.MkdirTemp("", "convene-drill-"+kind+"-")
	if err != nil {
		return "", nil, err
	}
	return dir, func(passed bool) {
		if passed {
			_ = os.RemoveAll(dir)
		}
	}, nil
}

// run is what both drills share: the timeline, the steps measured and
// the failures.
type run struct {
	opts   Options
	d      *deployment
	start  time.Time
	steps  []Step
	judged []Measure
	failed []string
	// ignore are conferences a failed operation left uncertain: the
	// failure judges them, not the settle.
	ignore map[string]bool
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.opts.Out, "%8.3fs  %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

func (r *run) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.failed = append(r.failed, msg)
	r.logf("  FAILED: %s", msg)
}

// settle waits until every conference of want runs once, on a live node,
// with nothing else running, waiting or being created and every invariant
// of the audit holding (want nil: whatever runs, once each), and answers what it measured last (with the
// audit's complaint when it did not settle within the timeout).
func (r *run) settle(ctx context.Context, step string, want Census) (Measure, bool) {
	deadline := time.Now().Add(r.opts.SettleTimeout)
	var (
		last    Measure
		lastErr error
	)
	for {
		if err := r.d.died(); err != nil {
			return Measure{Step: step, Want: want.clone(), Audit: err.Error()}, false
		}
		s, err := r.d.obs.take(ctx, r.d.liveNodes())
		if err == nil {
			w := want
			if w == nil {
				w = s.Running
			}
			last = Measure{Step: step, Want: w.clone(), Running: s.Running, Waiting: s.Waiting, Copies: s.Copies()}
			for e := range r.ignore {
				delete(last.Want, e)
				delete(last.Running, e)
				delete(last.Waiting, e)
				delete(last.Copies, e)
			}
			switch {
			case !s.Report.OK():
				last.Audit = s.Report.String()
			case s.Report.Creating > 0:
				last.Audit = s.Report.String() + " (creates or restores unfinished)"
			}
			if len(Judge(last)) == 0 {
				return last, true
			}
		}
		lastErr = err
		if time.Now().After(deadline) || ctx.Err() != nil {
			if last.Step == "" {
				last = Measure{Step: step, Want: want.clone(), Audit: fmt.Sprintf("no complete view of the platform: %v", lastErr)}
			}
			return last, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// record keeps a step's measure and figures and says at once what is
// wrong.
func (r *run) record(m Measure, recovered time.Duration) {
	r.judged = append(r.judged, m)
	r.steps = append(r.steps, Step{Name: m.Step, Recovered: recovered, Counts: m.Count()})
	problems := Judge(m)
	for i, p := range problems {
		if i == 10 {
			r.logf("  ... and %d more", len(problems)-10)
			break
		}
		r.logf("  FAILED: %s", p)
	}
	if len(problems) == 0 {
		r.logf("  %d conferences run, each the one booked, once, on a live node; the audit holds", len(m.Want))
	}
}

func (r *run) result() Result {
	res := Result{Steps: r.steps, Failures: Verdict(r.judged, r.failed)}
	if len(r.judged) > 0 {
		res.Final = r.judged[len(r.judged)-1]
	}
	return res
}

// Print writes a result's verdict, then its figures last.
func (res Result) Print(w io.Writer) {
	if res.Passed() {
		fmt.Fprintln(w, "\ndrill passed: no conference lost, doubled or left pending; no operation failed")
	} else {
		fmt.Fprintf(w, "\nDRILL FAILED: %d problems\n", len(res.Failures))
		for i, f := range res.Failures {
			if i == 50 {
				fmt.Fprintf(w, "  ... and %d more\n", len(res.Failures)-50)
				break
			}
			fmt.Fprintln(w, "  -", f)
		}
	}
	fmt.Fprintln(w, "\nfigures (recovery: from the fault until every conference ran once again, with the service back):")
	width := len("step")
	for _, s := range res.Steps {
		width = max(width, len(s.Name))
	}
	fmt.Fprintf(w, "  %-*s  %10s  %5s  %7s  %7s\n", width, "step", "recovery", "lost", "doubled", "pending")
	for _, s := range res.Steps {
		rec := "-"
		if s.Recovered > 0 {
			rec = ms(s.Recovered)
		}
		fmt.Fprintf(w, "  %-*s  %10s  %5d  %7d  %7d\n", width, s.Name, rec, s.Lost, s.Doubled, s.Pending)
	}
	for _, f := range res.Figures {
		fmt.Fprintln(w, f)
	}
}

// ms prints a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

// logsHint says where the processes' logs are.
func logsHint(dir string) string {
	return "the processes' logs are in " + filepath.Clean(dir) + " (" + strings.Join([]string{"<host>.log", "nats-server.log", "redis/redis.log"}, ", ") + ")"
}
