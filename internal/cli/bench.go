package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/redisserver"
	"github.com/convene/convene/internal/stack"
)

func init() { register(benchCmd) }

// benchCommands are the benchmarks other files add.
var benchCommands = []func() *cobra.Command{benchCreateCmd}

func benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Convene on this machine",
	}
	for _, f := range benchCommands {
		cmd.AddCommand(f())
	}
	return cmd
}

type createBench struct {
	count, concurrency, nodes, warmup int
	rate                              int // creates/s offered; 0: a closed loop
	stores                            []string
	redisURL                          string
	logLevel                          string
	cpuProfile, memProfile            string
	apiURL, token, domain             string // an outside platform to load instead
}

// benchToken is the API token of the platforms benchmarks start.
const benchToken = "bench-token-0123456789"

func benchCreateCmd() *cobra.Command {
	var b createBench
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create conferences through the full path: API, scheduler, store, node ACK",
		Long: `Creates conferences through the whole path: HTTP API, bus to the
scheduler, licence check and count in the store, RMS, the node's ACK, the
store again. Everything runs in this process on loopback; the store is the
embedded one, a redis-server this command starts, or both. The load comes
from one kept-alive HTTP/1.1 connection per worker, written and read
directly: a light client leaves the machine to the platform.

By default the workers create as fast as they can (a closed loop): each
starts its next create when the last one is answered. With --rate N the
creates are offered at N per second on a fixed schedule instead, spread
over the same workers; latency is then counted from when a create was due,
not from when a worker got to it, so a stall shows as latency for every
create that fell due during it, not only for those in flight.

With --api the load goes, from this process, to a platform running in
another (convene serve): nothing is started here, the conferences are
created for --domain (default demo) with --token (default
$CONVENE_TOKEN, else the token file serve wrote), and the measure is the
client's alone. Give that
platform's domain a licence and its nodes room for warm-up plus count
conferences.

Prints creates/s, latency percentiles and store round trips per create.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if b.rate < 0 {
				return fmt.Errorf("--rate %d: give creates per second, or 0 for as fast as possible", b.rate)
			}
			tuneGC()
			stop, err := startCPUProfile(b.cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			defer writeAllocProfile(cmd.ErrOrStderr(), b.memProfile)
			if b.apiURL != "" {
				res, err := b.runRemote(cmd.Context(), cmd.OutOrStdout())
				if err != nil {
					return err
				}
				res.print(cmd.OutOrStdout())
				if res.errors > 0 {
					return exitCode(1)
				}
				return nil
			}
			failed := false
			for _, s := range b.stores {
				res, err := b.run(cmd.Context(), s, cmd.OutOrStdout())
				if err != nil {
					return err
				}
				res.print(cmd.OutOrStdout())
				failed = failed || res.errors > 0
			}
			if failed {
				return exitCode(1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&b.count, "count", 20000, "conferences to create (timed)")
	f.IntVar(&b.warmup, "warmup", 1000, "conferences created first, not timed")
	f.IntVar(&b.concurrency, "concurrency", 32, "creates in flight at once")
	f.IntVar(&b.rate, "rate", 0, "creates/s offered on a fixed schedule; 0: as fast as the workers go")
	f.IntVar(&b.nodes, "nodes", 3, "simulated media nodes")
	f.StringSliceVar(&b.stores, "store", []string{"embedded", "redis"}, "stores to run against: embedded, redis")
	f.StringVar(&b.redisURL, "redis", "", "use this Redis instead of starting a redis-server")
	f.StringVar(&b.logLevel, "log-level", "error", "log level of the services")
	f.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	f.StringVar(&b.memProfile, "memprofile", "", "write an allocation profile of the run to this file")
	f.StringVar(&b.apiURL, "api", "", "load the platform whose API is at this URL (http://host:port) instead of one started here")
	f.StringVar(&b.token, "token", "", "with --api: an API token that may create conferences (default $CONVENE_TOKEN, else the file "+apiTokenFile+")")
	f.StringVar(&b.domain, "domain", "", "with --api: the user domain of the conferences (default demo)")
	return cmd
}

type createResult struct {
	store              string
	created, errors    int
	firstErr           error
	elapsed            time.Duration
	lat                []time.Duration
	trips              int64
	batches, batchItem int64
	nodes, conc        int
	running            int
	remote             bool    // measured from outside: no store figures
	serverCPU          float64 // remote: the platform's process CPU seconds, when its metrics say
}

func (b *createBench) config() *config.Config {
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = b.count + b.warmup
	}
	c := &config.Config{
		Platforms: []config.Platform{{Moid: "bench", NumberSegment: "7", E164Digits: 7, Rooms: []config.Room{
			{Moid: "bench-r1", Type: "main"}, {Moid: "bench-r2", Type: "secondary"},
		}}},
		Domains: []config.Domain{{Moid: "bench", License: limits}},
		API:     config.API{Tokens: []config.Token{{Name: "bench", Token: benchToken}}},
	}
	c.Defaults()
	c.Scheduler.EndCheckInterval = 10 * time.Second
	return c
}

func (b *createBench) run(ctx context.Context, storeKind string, out io.Writer) (*createResult, error) {
	opts := stack.Options{
		Config: b.config(), Listen: "127.0.0.1:0", NATSListen: "none",
		SimNodes: b.nodes, SimCapacity: b.count + b.warmup,
		Log: newLogger(os.Stderr, b.logLevel),
	}
	switch storeKind {
	case "embedded":
	case "redis":
		opts.Redis = b.redisURL
		if opts.Redis == "" {
			url, stop, err := benchRedis()
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
	if err := waitNodes(ctx, st, b.nodes); err != nil {
		return nil, err
	}
	load := "as fast as possible"
	if b.rate > 0 {
		load = fmt.Sprintf("offered at %d/s", b.rate)
	}
	fmt.Fprintf(out, "bench create: store %s, %d nodes, concurrency %d, %s: %d warm-up, then %d timed creates\n",
		storeKind, b.nodes, b.concurrency, load, b.warmup, b.count)

	gen := &rawTarget{addr: st.API.Addr(), token: benchToken}
	const domain = "bench"
	if _, err := b.driveWith(ctx, nil, gen, 0, domain, b.warmup, nil); err != nil {
		return nil, err
	}
	before := st.Store.Stats()
	res := &createResult{store: storeKind, nodes: b.nodes, conc: b.concurrency, lat: make([]time.Duration, b.count)}
	start := time.Now()
	errs, err := b.driveWith(ctx, nil, gen, b.rate, domain, b.count, res.lat)
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
	res.created = b.count - res.errors
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

// runRemote loads a platform that runs in another process, through its
// API at b.apiURL.
func (b *createBench) runRemote(ctx context.Context, out io.Writer) (*createResult, error) {
	u, err := url.Parse(b.apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--api %q: give the API's address as http://host:port or https://host:port", b.apiURL)
	}
	token := firstNonEmpty(b.token, os.Getenv("CONVENE_TOKEN"))
	if token == "" {
		data, err := os.ReadFile(filepath.FromSlash(apiTokenFile))
		if err != nil {
			return nil, fmt.Errorf("--api needs a token that may create conferences: pass --token, set CONVENE_TOKEN, or run this where `convene serve` wrote %s", apiTokenFile)
		}
		token = strings.TrimSpace(string(data))
	}
	domain := firstNonEmpty(b.domain, "demo")
	load := "as fast as possible"
	if b.rate > 0 {
		load = fmt.Sprintf("offered at %d/s", b.rate)
	}
	fmt.Fprintf(out, "bench create: the platform at %s, domain %s, concurrency %d, %s: %d warm-up, then %d timed creates\n",
		u.Redacted(), domain, b.concurrency, load, b.warmup, b.count)
	gen := &rawTarget{addr: u.Host, token: token, tls: u.Scheme == "https"}
	if _, err := b.driveWith(ctx, nil, gen, 0, domain, b.warmup, nil); err != nil {
		return nil, err
	}
	res := &createResult{store: "remote", conc: b.concurrency, lat: make([]time.Duration, b.count), remote: true}
	cpu0, cpuOK := serverCPU(ctx, u, token)
	start := time.Now()
	errs, err := b.driveWith(ctx, nil, gen, b.rate, domain, b.count, res.lat)
	res.elapsed = time.Since(start)
	if err != nil {
		return nil, err
	}
	if cpu1, ok := serverCPU(ctx, u, token); ok && cpuOK {
		res.serverCPU = cpu1 - cpu0
	}
	res.errors = len(errs)
	if len(errs) > 0 {
		res.firstErr = errs[0]
	}
	res.created = b.count - res.errors
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

// drive creates n conferences of domain "bench" with b.concurrency
// workers, recording each latency in lat when given.
func (b *createBench) drive(ctx context.Context, client *apiclient.Client, n int, lat []time.Duration) ([]error, error) {
	return b.driveDomain(ctx, client, "bench", n, lat)
}

// driveDomain is drive for any domain.
func (b *createBench) driveDomain(ctx context.Context, client *apiclient.Client, domain string, n int, lat []time.Duration) ([]error, error) {
	return b.driveWith(ctx, client, nil, 0, domain, n, lat)
}

// rawTarget is an API for the benchmark's own load generator (rawCreator).
type rawTarget struct {
	addr, token string
	tls         bool
}

// driveWith creates n conferences of domain with b.concurrency workers,
// through gen when given and client otherwise. With rate > 0, create i is
// due at start + i/rate and its latency counts from then.
func (b *createBench) driveWith(ctx context.Context, client *apiclient.Client, gen *rawTarget, rate int, domain string, n int, lat []time.Duration) ([]error, error) {
	var (
		next atomic.Int64
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range b.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var raw *rawCreator
			if gen != nil {
				var err error
				if raw, err = newRawCreator(gen.addr, gen.token, domain); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				raw.tls = gen.tls
				defer raw.close()
			}
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if rate > 0 {
					t0 = start.Add(time.Duration(i) * time.Second / time.Duration(rate))
					if d := time.Until(t0); d > 0 {
						time.Sleep(d)
					}
				}
				var err error
				if raw != nil {
					err = raw.create(ctx)
				} else {
					_, err = client.CreateConference(ctx, apiclient.CreateConferenceRequest{
						Name: "bench", Domain: domain, Scale: 8, Resolution: "720p", DurationMinutes: 120,
					})
				}
				if lat != nil {
					lat[i] = time.Since(t0)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs, ctx.Err()
}

func waitNodes(ctx context.Context, st *stack.Stack, n int) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		up := 0
		for _, node := range st.RMS.Nodes() {
			if node.State == protocol.NodeUp {
				up++
			}
		}
		if up >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("the %d simulated nodes did not register within 10s", n)
}

func (r *createResult) print(w io.Writer) {
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

// benchRedis starts a throwaway redis-server for a benchmark; stop kills
// it and removes its files.
func benchRedis() (url string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "convene-bench-redis-")
	if err != nil {
		return "", nil, err
	}
	srv, err := redisserver.Start(redisserver.Options{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return srv.URL(), func() { srv.Kill(); os.RemoveAll(dir) }, nil
}

// writeAllocProfile writes the allocations made so far to path; an empty
// path writes nothing.
func writeAllocProfile(errw io.Writer, path string) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(errw, "bench: allocation profile: %v\n", err)
	}
}

// startCPUProfile writes a CPU profile to path until stop; an empty path
// profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
