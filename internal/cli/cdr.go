package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/records"
)

func init() {
	register(cdrCmd)
	benchCommands = append(benchCommands, benchCdrCmd)
}

// cdrCommands are the subcommands of `convene cdr` other files add.
var cdrCommands = []func() *cobra.Command{cdrGenerateCmd}

func cdrCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cdr",
		Short: "Call records: query, statistics, CSV export; generate realistic ones",
	}
	for _, f := range cdrCommands {
		cmd.AddCommand(f())
	}
	return cmd
}

// defaultRecordsURL is the records database `convene serve` keeps in its
// data directory.
const defaultRecordsURL = ".convene/records.db"

// generateThroughAPI has the running platform write the calls.
func generateThroughAPI(cmd *cobra.Command, conn *apiConn, o cdr.GenerateOptions, nodes []string) error {
	c, err := conn.client()
	if err != nil {
		return err
	}
	// The same now and seed write the same calls: a request sent again
	// adds nothing.
	req := apiclient.CDRGenerateRequest{Count: o.Count, Days: o.Days, Seed: o.Seed, Now: time.Now().Truncate(time.Millisecond),
		Platform: o.Platform, Nodes: nodes}
	sum, err := c.GenerateCDRs(cmd.Context(), req)
	if err != nil {
		return conn.fail(err)
	}
	elapsed := time.Duration(sum.ElapsedMS) * time.Millisecond
	fmt.Fprintf(cmd.OutOrStdout(), "generated %d calls over the last %d days in %s (%.0f calls/s): %d voice, %d video, %d connected, %d to conferences\n",
		sum.Calls, o.Days, elapsed, float64(sum.Calls)/max(elapsed.Seconds(), 1e-3), sum.Voice, sum.Video, sum.Connected, sum.Conference)
	return nil
}

// openCdr opens the records database and starts a call records service
// on it; stop shuts both down.
func openCdr(ctx context.Context, recordsURL, zone string, errw io.Writer) (*records.DB, *cdr.Service, func(), error) {
	db, err := records.Open(ctx, recordsURL, newLogger(errw, "warn"))
	if err != nil {
		return nil, nil, nil, err
	}
	svc, err := cdr.New(cdr.Options{TimeZone: zone}, db, newLogger(errw, "warn"))
	if err == nil {
		err = svc.Start(ctx)
	}
	if err != nil {
		_ = db.Close()
		return nil, nil, nil, err
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = svc.Shutdown(sctx)
		_ = db.Close()
	}
	return db, svc, stop, nil
}

func cdrGenerateCmd() *cobra.Command {
	var (
		o          cdr.GenerateOptions
		recordsURL string
		zone       string
		nodes      []string
	)
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write realistic call records, as the SIP edge reports calls",
		Long: `Generate writes --count calls spread over the last --days days up to now,
each reported as the SIP edge reports a call (started, answered when it
was, ended), so the records, the roll-ups behind the statistics and the
change feed see them as real calls. The same --seed writes the same
calls. The mix: a bank's branches calling each other (8001001 to
8012200), some from mobiles, 12% of calls to conferences (6600001 to
6600040); a quarter of calls video, most answered, business hours.

It has a running platform write them (--api, --token), through the call
records its SIP nodes write to, in the platform's time zone. With
--records it writes straight into that records database instead (a
SQLite file, or postgres://...), in the time zone --time-zone, with no
platform running.`,
		Args: cobra.NoArgs,
	}
	conn := withAPIClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if o.Count < 1 {
			return errors.New("BAD_REQUEST: --count must be 1 or more")
		}
		if o.Days < 1 {
			return errors.New("BAD_REQUEST: --days must be 1 or more")
		}
		ctx := cmd.Context()
		out := cmd.OutOrStdout()
		if recordsURL == "" {
			return generateThroughAPI(cmd, conn, o, nodes)
		}
		_, svc, stop, err := openCdr(ctx, recordsURL, zone, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer stop()
		o.Location, o.Nodes = svc.Location(), nodes
		o.Progress = func(done int) {
			if done%100000 == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "  %d calls written\n", done)
			}
		}
		sum, err := cdr.Generate(ctx, svc, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "generated %d calls over the last %d days in %s (%.0f calls/s): %d voice, %d video, %d connected, %d to conferences\n",
			sum.Calls, o.Days, sum.Elapsed.Round(time.Millisecond), float64(sum.Calls)/sum.Elapsed.Seconds(),
			sum.Voice, sum.Video, sum.Connected, sum.Conference)
		return nil
	}
	f := cmd.Flags()
	f.IntVar(&o.Count, "count", 1000, "calls to write")
	f.IntVar(&o.Days, "days", 7, "spread over the last this many days, up to now")
	f.Uint64Var(&o.Seed, "seed", 1, "the same seed writes the same calls")
	f.StringVar(&o.Platform, "platform", "", "the platform the calls are recorded for (default the platform's; with --records, demo)")
	f.StringSliceVar(&nodes, "nodes", []string{"sip-a", "sip-b"}, "the SIP nodes the calls are spread over")
	f.StringVar(&recordsURL, "records", "", "write straight into this records database (a SQLite file such as "+defaultRecordsURL+", or postgres://user@host/db) instead of through the API")
	f.StringVar(&zone, "time-zone", "UTC", "with --records, the platform's time zone (an IANA name such as Asia/Shanghai)")
	return cmd
}

type cdrBench struct {
	count, days, runs int
	seed              uint64
	recordsURL, zone  string
	rate              int
	rateFor           time.Duration
	reuse             bool
}

func benchCdrCmd() *cobra.Command {
	var b cdrBench
	cmd := &cobra.Command{
		Use:   "cdr",
		Short: "Measure writing, querying and counting call records",
		Long: `bench cdr writes --count calls (1,000,000 by default) over the last --days
days through the recorder the SIP edge uses, in transactions shared by
the calls written at once, then offers --rate calls/s for --rate-for to
see whether writing keeps up, twice: calls that started anywhere in the
--days days (the roll-ups' worst case), then live calls, each ending as
it is written, as the SIP edge writes them; then it measures, --runs
times each:
statistics for a day (hourly buckets) and for 30 days (daily buckets),
filtered query pages, and statistics filtered by a caller prefix and by
a called number (from the number roll-ups). Each measurement prints one
line with p50 and p99.

It writes to a fresh SQLite file unless --records names a database (an
empty one: postgres://user@host/db to measure PostgreSQL), or --reuse
measures the records already there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return b.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&b.count, "count", 1000000, "calls to write")
	f.IntVar(&b.days, "days", 30, "spread over the last this many days")
	f.IntVar(&b.runs, "runs", 200, "runs of each read measurement")
	f.Uint64Var(&b.seed, "seed", 1, "seed of the generated calls")
	f.StringVar(&b.recordsURL, "records", "", "the records database (default: a fresh SQLite file, removed afterwards)")
	f.StringVar(&b.zone, "time-zone", "UTC", "the platform's time zone")
	f.IntVar(&b.rate, "rate", 2000, "calls/s offered in the paced write phase (0 skips it)")
	f.DurationVar(&b.rateFor, "rate-for", 10*time.Second, "length of the paced write phase")
	f.BoolVar(&b.reuse, "reuse", false, "measure the records already in --records instead of writing --count")
	return cmd
}

func (b *cdrBench) run(ctx context.Context, out, errw io.Writer) error {
	if b.recordsURL == "" {
		dir, err := os.MkdirTemp("", "convene-bench-cdr-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		b.recordsURL = filepath.Join(dir, "records.db")
	}
	db, svc, stop, err := openCdr(ctx, b.recordsURL, b.zone, errw)
	if err != nil {
		return err
	}
	defer stop()
	name := db.Dialect()
	existing, err := db.CallRecords(ctx, records.CallFilter{Limit: 1})
	if err != nil {
		return err
	}
	switch {
	case b.reuse && len(existing) == 0:
		return fmt.Errorf("bench cdr: --reuse: %s holds no call records", db.URL())
	case !b.reuse && len(existing) > 0:
		return fmt.Errorf("bench cdr: %s already holds call records: give an empty database, or --reuse to measure those", db.URL())
	}
	now := time.Now()
	fmt.Fprintf(out, "bench cdr: %s %s, time zone %s\n", name, db.URL(), svc.Location())
	if !b.reuse {
		if err := b.write(ctx, out, errw, name, svc, now); err != nil {
			return err
		}
	}
	if b.rate > 0 {
		for _, live := range []bool{false, true} {
			if err := b.paced(ctx, out, name, svc, live); err != nil {
				return err
			}
		}
	}
	return b.reads(ctx, out, name, svc, now)
}

// timedRecorder measures how long each call's end takes to be written.
type timedRecorder struct {
	cdr.Recorder
	mu   sync.Mutex
	lat  []time.Duration
	keep int // every keep-th end is kept
	n    atomic.Int64
}

func (r *timedRecorder) CallEnded(ctx context.Context, e cdr.CallEvent) error {
	began := time.Now()
	err := r.Recorder.CallEnded(ctx, e)
	if r.n.Add(1)%int64(r.keep) == 0 {
		d := time.Since(began)
		r.mu.Lock()
		r.lat = append(r.lat, d)
		r.mu.Unlock()
	}
	return err
}

func (b *cdrBench) write(ctx context.Context, out, errw io.Writer, name string, svc *cdr.Service, now time.Time) error {
	rec := &timedRecorder{Recorder: svc, keep: max(1, b.count/100000)}
	opts := cdr.GenerateOptions{Count: b.count, Days: b.days, Seed: b.seed, Now: now, Location: svc.Location(),
		Progress: func(done int) {
			if done%100000 == 0 {
				fmt.Fprintf(errw, "  %d calls written\n", done)
			}
		}}
	sum, err := cdr.Generate(ctx, rec, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%-8s write %d calls (start, answer, end) in %s: %.0f calls/s; end written  %s\n",
		name, sum.Calls, sum.Elapsed.Round(time.Millisecond), float64(sum.Calls)/sum.Elapsed.Seconds(), cdrPcts(rec.lat))
	return nil
}

// paced offers b.rate calls/s for b.rateFor, each call a goroutine
// reporting its steps, and says whether writing kept up. The calls start
// anywhere in the last --days days (the worst case for the roll-ups:
// hardly two calls of a batch share an hour), or, live, each ends as it
// is written, having started its duration before, as the SIP edge
// writes them.
func (b *cdrBench) paced(ctx context.Context, out io.Writer, name string, svc *cdr.Service, live bool) error {
	rec := &timedRecorder{Recorder: svc, keep: 1}
	opts := cdr.GenerateOptions{Days: b.days, Seed: b.seed + 1, Now: time.Now(), Location: svc.Location()}
	what := fmt.Sprintf("starts over %d days", b.days)
	if live {
		opts.Seed, what = b.seed+2, "live: each ends as written"
	}
	const tick = 10 * time.Millisecond
	perTick := float64(b.rate) * tick.Seconds()
	total := int(float64(b.rate) * b.rateFor.Seconds())
	var (
		wg      sync.WaitGroup
		failed  atomic.Int64
		offered float64
	)
	began := time.Now()
	t := time.NewTicker(tick)
	sent := 0
	for sent < total {
		<-t.C
		offered = time.Since(began).Seconds() * float64(b.rate)
		for ; sent < total && float64(sent) < offered+perTick; sent++ {
			e := cdr.PlanCall(opts, b.count+sent)
			if live {
				e = endingNow(e)
			}
			wg.Go(func() {
				started, answered, ended, wasAnswered := cdr.Steps(e)
				err := rec.CallStarted(ctx, started)
				if err == nil && wasAnswered {
					err = rec.CallAnswered(ctx, answered)
				}
				if err == nil {
					err = rec.CallEnded(ctx, ended)
				}
				if err != nil {
					failed.Add(1)
				}
			})
		}
	}
	t.Stop()
	wg.Wait()
	elapsed := time.Since(began)
	achieved := float64(total) / elapsed.Seconds()
	verdict := "kept up"
	if achieved < .97*float64(b.rate) || failed.Load() > 0 {
		verdict = "FELL BEHIND"
	}
	fmt.Fprintf(out, "%-8s paced %d calls/s for %s (%s): %.0f calls/s written, %d failed, %s; end written  %s\n",
		name, b.rate, b.rateFor, what, achieved, failed.Load(), verdict, cdrPcts(rec.lat))
	return nil
}

// endingNow moves a planned call so that it ends now.
func endingNow(e cdr.CallEvent) cdr.CallEvent {
	d := time.Now().Truncate(time.Millisecond).Sub(e.End)
	e.Start = e.Start.Add(d)
	if !e.Answer.IsZero() {
		e.Answer = e.Answer.Add(d)
	}
	e.End = e.End.Add(d)
	return e
}

func (b *cdrBench) reads(ctx context.Context, out io.Writer, name string, svc *cdr.Service, now time.Time) error {
	loc := svc.Location()
	today := time.Date(now.In(loc).Year(), now.In(loc).Month(), now.In(loc).Day(), 0, 0, 0, 0, loc)
	yesterday := today.AddDate(0, 0, -1)
	month := today.AddDate(0, 0, -29)
	tomorrow := today.AddDate(0, 0, 1)
	rng := func(from, to time.Time, extra url.Values) url.Values {
		v := url.Values{"start": {from.Format(time.RFC3339)}, "end": {to.Format(time.RFC3339)}}
		for k, vals := range extra {
			v[k] = vals
		}
		return v
	}
	type measure struct {
		what string
		v    url.Values
		run  func(cdr.Query) (int, error) // returns what the answer held
	}
	stats := func(q cdr.Query) (int, error) {
		st, err := svc.Stats(ctx, q)
		return int(st.Totals.Count), err
	}
	page := func(q cdr.Query) (int, error) {
		p, err := svc.Query(ctx, q)
		return len(p.CDRs), err
	}
	for _, m := range []measure{
		{"stats day (hour buckets)", rng(yesterday, today, nil), stats},
		{"stats 30 days (day buckets)", rng(month, tomorrow, nil), stats},
		{"stats 30 days type=video connected=true", rng(month, tomorrow, url.Values{"type": {"video"}, "connected": {"true"}}), stats},
		{"query page type=video connected=true", rng(month, tomorrow, url.Values{"type": {"video"}, "connected": {"true"}, "page_size": {"100"}}), page},
		{"query page caller=8001*", rng(month, tomorrow, url.Values{"caller": {"8001*"}, "page_size": {"100"}}), page},
		{"query page called=8003001 connected=false", rng(month, tomorrow, url.Values{"called": {"8003001"}, "connected": {"false"}, "page_size": {"100"}}), page},
		{"stats day caller=8001*", rng(yesterday, today, url.Values{"caller": {"8001*"}}), stats},
		{"stats 30 days called=8003001", rng(month, tomorrow, url.Values{"called": {"8003001"}}), stats},
	} {
		q, err := cdr.ParseQuery(m.v, now, loc)
		if err != nil {
			return err
		}
		held := 0
		for range 5 { // warm-up
			if held, err = m.run(q); err != nil {
				return err
			}
		}
		lat := make([]time.Duration, 0, b.runs)
		for range b.runs {
			began := time.Now()
			if _, err := m.run(q); err != nil {
				return err
			}
			lat = append(lat, time.Since(began))
		}
		fmt.Fprintf(out, "%-8s %-46s %s  (%d runs, %d in the answer)  %s\n", name, m.what, cdrPcts(lat), b.runs, held, cdrTarget(lat))
	}
	return nil
}

// cdrPcts is "p50 X ms  p99 Y ms".
func cdrPcts(lat []time.Duration) string {
	if len(lat) == 0 {
		return "p50 -  p99 -"
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("p50 %.2f ms  p99 %.2f ms", float64(at(.5))/1e6, float64(at(.99))/1e6)
}

// cdrTarget says whether p99 is within the 50 ms target.
func cdrTarget(lat []time.Duration) string {
	s := slices.Clone(lat)
	slices.Sort(s)
	if len(s) > 0 && s[min(len(s)-1, int(.99*float64(len(s))))] <= 50*time.Millisecond {
		return "p99 within 50 ms"
	}
	return "p99 OVER 50 ms"
}
