package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
)

// Create is `convene bench create`: conferences created through the
// whole path (HTTP API, bus to the scheduler, licence check and count in
// the store, RMS, the node's ACK, the store again).
type Create struct {
	Count, Warmup, Concurrency, Nodes int
	Rate                              int    // creates/s offered; 0: a closed loop
	RedisURL                          string // with store redis: this Redis instead of one started here
	Log                               *slog.Logger
}

// CreateResult is what one run of Create measured.
type CreateResult struct {
	store              string
	created, errors    int
	firstErr           error
	elapsed            time.Duration
	lat                []time.Duration
	trips              int64
	batches, batchItem int64
	running            int
	remote             bool    // measured from outside: no store figures
	serverCPU          float64 // remote: the platform's process CPU seconds, when its metrics say
}

// Refused is how many creates the platform refused.
func (r *CreateResult) Refused() int { return r.errors }

func (b *Create) config() *config.Config {
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = b.Count + b.Warmup
	}
	c := &config.Config{
		Platforms: []config.Platform{{Moid: "bench", NumberSegment: "7", E164Digits: 7, Rooms: []config.Room{
			{Moid: "bench-r1", Type: "main"}, {Moid: "bench-r2", Type: "secondary"},
		}}},
		Domains: []config.Domain{{Moid: "bench", License: limits}},
		API:     config.API{Tokens: []config.Token{{Name: "bench", Token: Token}}},
	}
	c.Defaults()
	c.Scheduler.EndCheckInterval = 10 * time.Second
	return c
}

func (b *Create) loader() Loader { return Loader{Concurrency: b.Concurrency} }

func (b *Create) load() string {
	if b.Rate > 0 {
		return fmt.Sprintf("offered at %d/s", b.Rate)
	}
	return "as fast as possible"
}

// Run starts a platform in this process on the store of storeKind
// (embedded or redis) and loads it.
func (b *Create) Run(ctx context.Context, storeKind string, out io.Writer) (*CreateResult, error) {
	opts := stack.Options{
		Config: b.config(), Listen: "127.0.0.1:0", NATSListen: "none",
		SimNodes: b.Nodes, SimCapacity: b.Count + b.Warmup, Log: b.Log,
	}
	switch storeKind {
	case "embedded":
	case "redis":
		opts.Redis = b.RedisURL
		if opts.Redis == "" {
			url, stop, err := StartRedis()
			if err != nil {
				return nil, err
			}
			defer stop()
			opts.Redis = url
		}
	default:
		return nil, fmt.Errorf("--store %q: use embedded or redis", storeKind)
	}
	st, err := stack.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer st.Stop(context.Background())
	if err := WaitNodes(ctx, st, b.Nodes); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "bench create: store %s, %d nodes, concurrency %d, %s: %d warm-up, then %d timed creates\n",
		storeKind, b.Nodes, b.Concurrency, b.load(), b.Warmup, b.Count)

	gen := &Target{Addr: st.API.Addr(), Token: Token}
	const domain = "bench"
	if _, err := b.loader().Drive(ctx, nil, gen, 0, domain, b.Warmup, nil); err != nil {
		return nil, err
	}
	before := st.Store.Stats()
	res := &CreateResult{store: storeKind, lat: make([]time.Duration, b.Count)}
	start := time.Now()
	errs, err := b.loader().Drive(ctx, nil, gen, b.Rate, domain, b.Count, res.lat)
	res.elapsed = time.Since(start)
	if err != nil {
		return nil, err
	}
	after := st.Store.Stats()
	res.trips = after.RoundTrips - before.RoundTrips
	res.batches = after.Batches - before.Batches
	res.batchItem = after.BatchedItems - before.BatchedItems
	res.errors = len(errs)
	if len(errs) > 0 {
		res.firstErr = errs[0]
	}
	res.created = b.Count - res.errors
	confs, err := st.Store.DomainConferences(ctx, domain)
	if err != nil {
		return nil, err
	}
	for _, c := range confs {
		if c.State == protocol.StateRunning {
			res.running++
		}
	}
	return res, nil
}

// RunRemote loads a platform that runs in another process, through its
// API at api, creating conferences for domain with token.
func (b *Create) RunRemote(ctx context.Context, api *url.URL, token, domain string, out io.Writer) (*CreateResult, error) {
	fmt.Fprintf(out, "bench create: the platform at %s, domain %s, concurrency %d, %s: %d warm-up, then %d timed creates\n",
		api.Redacted(), domain, b.Concurrency, b.load(), b.Warmup, b.Count)
	gen := &Target{Addr: api.Host, Token: token, TLS: api.Scheme == "https"}
	if _, err := b.loader().Drive(ctx, nil, gen, 0, domain, b.Warmup, nil); err != nil {
		return nil, err
	}
	res := &CreateResult{store: "remote", lat: make([]time.Duration, b.Count), remote: true}
	cpu0, cpuOK := serverCPU(ctx, api, token)
	start := time.Now()
	errs, err := b.loader().Drive(ctx, nil, gen, b.Rate, domain, b.Count, res.lat)
	res.elapsed = time.Since(start)
	if err != nil {
		return nil, err
	}
	if cpu1, ok := serverCPU(ctx, api, token); ok && cpuOK {
		res.serverCPU = cpu1 - cpu0
	}
	res.errors = len(errs)
	if len(errs) > 0 {
		res.firstErr = errs[0]
	}
	res.created = b.Count - res.errors
	return res, nil
}

// serverCPU reads the CPU seconds the platform's process has used from
// its metrics (GET /metrics, process_cpu_seconds_total); false when they
// cannot be read (another role's token, or a process that does not say).
func serverCPU(ctx context.Context, api *url.URL, token string) (float64, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.JoinPath("/metrics").String(), nil)
	if err != nil {
		return 0, false
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// Print writes the run's figures.
func (r *CreateResult) Print(w io.Writer) {
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	pct := func(p float64) time.Duration { return r.lat[min(len(r.lat)-1, int(p*float64(len(r.lat))))] }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
	rate := float64(len(r.lat)) / r.elapsed.Seconds()
	fmt.Fprintf(w, "  creates/s        %.0f  (%d in %.2f s)\n", rate, len(r.lat), r.elapsed.Seconds())
	fmt.Fprintf(w, "  latency          p50 %s  p90 %s  p99 %s  max %s\n", ms(pct(.50)), ms(pct(.90)), ms(pct(.99)), ms(r.lat[len(r.lat)-1]))
	fmt.Fprintf(w, "  result           %d created, %d refused\n", r.created, r.errors)
	if r.firstErr != nil {
		fmt.Fprintf(w, "  first refusal    %v\n", r.firstErr)
	}
	if r.remote {
		if r.serverCPU > 0 {
			fmt.Fprintf(w, "  platform CPU     %.0f µs per create (%.2f cores)\n",
				r.serverCPU*1e6/float64(len(r.lat)), r.serverCPU/r.elapsed.Seconds())
		}
		return
	}
	perCreate := float64(r.trips) / float64(max(1, r.created))
	avgBatch := 0.0
	if r.batches > 0 {
		avgBatch = float64(r.batchItem) / float64(r.batches)
	}
	fmt.Fprintf(w, "  store            %.2f round trips per create (reserve and commit: one script run per %.1f creates on average)\n", perCreate, avgBatch)
	fmt.Fprintf(w, "  running          %d in the store\n", r.running)
}
