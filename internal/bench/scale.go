package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
)

// scaleFlatness is how much create p99 may grow from 10% to 100% of the
// load.
const scaleFlatness = 1.2

// Scale is `convene bench scale`: a platform of many nodes and
// conferences; create latency as it fills, memory, then a crash, a freeze
// and a room failure.
type Scale struct {
	Nodes, Rooms, Conferences int
	Concurrency, Sample       int
	Settle, Wait              time.Duration
	Store                     string
	CPUProfile, MemProfile    string
	Log                       *slog.Logger
}

// Validate says which option is out of range, by its flag.
func (b *Scale) Validate() error {
	switch {
	case b.Rooms < 2:
		return fmt.Errorf("--rooms %d: give at least 2, one of them fails", b.Rooms)
	case b.Nodes < 2*b.Rooms:
		return fmt.Errorf("--nodes %d: give at least two per room (%d)", b.Nodes, 2*b.Rooms)
	case b.Concurrency < 1:
		return fmt.Errorf("--concurrency %d: give at least 1", b.Concurrency)
	case b.Sample < 3:
		return fmt.Errorf("--sample %d: give at least 3, one per batch", b.Sample)
	case b.Conferences/10 < b.Sample:
		return fmt.Errorf("--sample %d: at most 10%% of --conferences (%d)", b.Sample, b.Conferences/10)
	case b.Store != "embedded" && b.Store != "redis":
		return fmt.Errorf("--store %q: use embedded or redis", b.Store)
	case b.Settle < 0:
		return fmt.Errorf("--settle %s: give a pause of 0 or more", b.Settle)
	case b.Wait <= 0:
		return fmt.Errorf("--wait %s: give how long the conferences of each failure have to run again, e.g. 2m", b.Wait)
	}
	return nil
}

// capacity lets each node take its share of a failed room's conferences
// and of a crashed and a frozen node's, with room to spare: half again the
// most a node of the rooms left would hold on average.
func (b *Scale) capacity() int {
	left := b.Nodes - (b.Nodes+b.Rooms-1)/b.Rooms - 2
	return (b.Conferences+left-1)/left*3/2 + 1
}

func (b *Scale) config() *config.Config {
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = b.Conferences
	}
	rooms := make([]config.Room, b.Rooms)
	for i := range rooms {
		rooms[i] = config.Room{Moid: "bench-r" + strconv.Itoa(i+1), Type: "secondary"}
	}
	rooms[0].Type = "main"
	c := &config.Config{
		Platforms: []config.Platform{{Moid: "bench", NumberSegment: "7", E164Digits: 7, Rooms: rooms}},
		Domains:   []config.Domain{{Moid: "bench", License: limits}},
		API:       config.API{Tokens: []config.Token{{Name: "bench", Token: Token}}},
	}
	c.Defaults()
	c.Scheduler.EndCheckInterval = 10 * time.Second
	c.Scheduler.SweepInterval = time.Minute
	return c
}

// ScaleRun is one run's platform and what it measured.
type ScaleRun struct {
	b       *Scale
	out     io.Writer
	st      *stack.Stack
	gen     *Target
	created int

	refused, told int   // creates refused; of them, those printed
	firstRefusal  error // the first refused since the last print

	p99    []time.Duration // at each point
	audits []bool          // each step's audit, true when it held
	lost   int             // conferences that ran before the failures and not after
}

// OK reports whether every audit held and no conference was lost.
func (r *ScaleRun) OK() bool {
	return len(r.audits) > 0 && r.lost == 0 && !slices.Contains(r.audits, false)
}

// flat reports p99 at 100% over p99 at 10%.
func (r *ScaleRun) flat() float64 {
	if len(r.p99) < 3 || r.p99[0] <= 0 {
		return 0
	}
	return float64(r.p99[2]) / float64(r.p99[0])
}

// Run starts the platform, fills it, measures it and breaks it.
func (b *Scale) Run(ctx context.Context, out io.Writer) (*ScaleRun, error) {
	opts := stack.Options{
		Config: b.config(), Listen: "127.0.0.1:0", NATSListen: "none",
		Log: b.Log,
	}
	if b.Store == "redis" {
		url, stop, err := StartRedis()
		if err != nil {
			return nil, err
		}
		defer stop()
		opts.Redis = url
	}
	fmt.Fprintf(out, "bench scale: %d simulated nodes in %d rooms (capacity %d conferences each), %d conferences, concurrency %d, store %s%s\n",
		b.Nodes, b.Rooms, b.capacity(), b.Conferences, b.Concurrency, b.Store, LoadAverage())
	t0 := time.Now()
	st, err := stack.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer st.Stop(context.Background())
	for i := range b.Nodes {
		if err := st.AddSimNode(ctx, i+1, b.capacity()); err != nil {
			return nil, err
		}
	}
	// waitNodes allows 10 s; many nodes may take a few of those rounds.
	for try := 0; ; try++ {
		err := WaitNodes(ctx, st, b.Nodes)
		if err == nil {
			break
		}
		if try == 5 {
			return nil, err
		}
	}
	fmt.Fprintf(out, "  nodes up         %d in %s\n", b.Nodes, Ms(time.Since(t0)))
	r := &ScaleRun{b: b, out: out, st: st, gen: &Target{Addr: st.API.Addr(), Token: Token}}
	if err := r.load(ctx); err != nil {
		return nil, err
	}
	before, err := r.conferenceSet(ctx)
	if err != nil {
		return nil, err
	}
	if n := running(before); n != b.Conferences || len(before) != b.Conferences {
		return nil, fmt.Errorf("%d of %d conferences run after the load, %d in the store", n, b.Conferences, len(before))
	}
	r.idleCPU()
	stopProfile, err := StartCPUProfile(b.profile("failures"))
	if err != nil {
		return nil, err
	}
	stopProfile = sync.OnceFunc(stopProfile)
	defer stopProfile()
	if err := r.crash(ctx, before); err != nil {
		return nil, err
	}
	if err := r.freeze(ctx, before); err != nil {
		return nil, err
	}
	if err := r.failRoom(ctx, before); err != nil {
		return nil, err
	}
	stopProfile()
	verdict := "PASS: every audit holds, no conference lost or doubled"
	if !r.OK() {
		verdict = "FAIL: an audit failed or a conference was lost"
	}
	flat := "flat"
	if r.flat() > scaleFlatness {
		flat = "NOT flat"
	}
	fmt.Fprintf(out, "result: %s; create p99 %s (%.2f); %d creates refused (and made again); %s in all%s\n",
		verdict, flat, r.flat(), r.refused, Ms(time.Since(t0)), LoadAverage())
	return r, nil
}

// profile is the file a part of the run's CPU profile goes to, or "".
func (b *Scale) profile(part string) string {
	if b.CPUProfile == "" {
		return ""
	}
	return b.CPUProfile + "." + part
}

// settlePause is how long the platform is left alone before a timed
// sample: long enough for every node to report its list once.
func (r *ScaleRun) settlePause() time.Duration {
	if r.b.Settle > 0 {
		return r.b.Settle
	}
	return r.st.Config.RMS.ConfListInterval + time.Second
}

// load fills the platform to 10%, 50% and 100% of the conferences,
// timing b.Sample creates just before each point, and measures memory.
func (r *ScaleRun) load(ctx context.Context) error {
	b := r.b
	points := []int{b.Conferences / 10, b.Conferences / 2, b.Conferences}
	heap0, _ := liveHeap()
	var heap10 uint64
	var owners10 heapOwners
	for i, p := range points {
		pct := p * 100 / b.Conferences
		t := time.Now()
		n := p - b.Sample - r.created
		if err := r.create(ctx, n, nil); err != nil {
			return err
		}
		fill := float64(n) / time.Since(t).Seconds()
		select {
		case <-time.After(r.settlePause()):
		case <-ctx.Done():
			return ctx.Err()
		}
		c0, cpuOK0 := processCPU(r.st)
		p50, p99, rate, err := r.sample(ctx, fmt.Sprintf("create%d", pct))
		if err != nil {
			return err
		}
		c1, cpuOK1 := processCPU(r.st)
		cpu := ""
		if cpuOK0 && cpuOK1 {
			cpu = fmt.Sprintf(", %.2f ms CPU each", (c1-c0)*1000/float64(b.Sample))
		}
		r.p99 = append(r.p99, p99)
		fmt.Fprintf(r.out, "  create at %3d%%   %d running: p50 %s  p99 %s  (medians of 3 batches of %d, %.0f creates/s%s; filled at %.0f/s%s%s)\n",
			pct, p, msf(p50), msf(p99), b.Sample/3, rate, cpu, fill, r.refusals(), LoadAverage())
		if i == 0 {
			heap10, _ = liveHeap()
			owners10 = heapByOwner()
		}
	}
	ratio := r.flat()
	verdict := "PASS"
	if ratio > scaleFlatness {
		verdict = "FAIL"
	}
	fmt.Fprintf(r.out, "  p99 flatness     p99 at 100%% / p99 at 10%% = %.2f (at most %.2f): %s\n", ratio, scaleFlatness, verdict)

	heap, rss := liveHeap()
	perConf := func(bytes uint64, n int) string { return fmt.Sprintf("%.2f KB", float64(bytes)/1024/float64(n)) }
	rssText := "unknown"
	if rss > 0 {
		rssText = perConf(rss, b.Conferences)
	}
	fmt.Fprintf(r.out, "  memory           %s live heap, %s process RSS per running conference at %d (all of the platform in this process, %d nodes' copies included)\n",
		perConf(heap, b.Conferences), rssText, b.Conferences, b.Nodes)
	added := points[2] - points[0]
	grown := uint64(0)
	if heap > heap10 {
		grown = heap - heap10
	}
	fmt.Fprintf(r.out, "  memory added     %s live heap per conference added from %d to %d; %.1f MB live heap with no conference\n",
		perConf(grown, added), points[0], points[2], float64(heap0)/(1<<20))
	fmt.Fprintf(r.out, "  memory by owner  per conference added: %s (heap profile estimate)\n", heapByOwner().perConference(owners10, added))
	return writeHeapProfile(b.MemProfile)
}

// sample times b.Sample creates in three batches and answers the median
// of the batches' p50 and of their p99, and the creates per second. With
// --cpuprofile the batches are profiled to the file named for part.
func (r *ScaleRun) sample(ctx context.Context, part string) (p50, p99 time.Duration, rate float64, err error) {
	stop, err := StartCPUProfile(r.b.profile(part))
	if err != nil {
		return 0, 0, 0, err
	}
	defer stop()
	var p50s, p99s []time.Duration
	t := time.Now()
	for k := range 3 {
		size := r.b.Sample / 3
		if k == 2 {
			size = r.b.Sample - 2*size
		}
		lat := make([]time.Duration, size)
		if err := r.create(ctx, size, lat); err != nil {
			return 0, 0, 0, err
		}
		slices.Sort(lat)
		p50s = append(p50s, lat[len(lat)/2])
		p99s = append(p99s, lat[min(len(lat)-1, len(lat)*99/100)])
	}
	rate = float64(r.b.Sample) / time.Since(t).Seconds()
	slices.Sort(p50s)
	slices.Sort(p99s)
	return p50s[1], p99s[1], rate, nil
}

// create makes n conferences, recording each latency in lat when given.
// Refused creates are counted and made again, untimed, for up to
// createRounds more rounds, each after a longer pause (a scheduler taking
// over answers SCHEDULER_UNAVAILABLE until it is active): the load must
// reach its size to be measured.
func (r *ScaleRun) create(ctx context.Context, n int, lat []time.Duration) error {
	loader := Loader{Concurrency: r.b.Concurrency}
	for round := 0; n > 0; round++ {
		errs, err := loader.Drive(ctx, nil, r.gen, 0, "bench", n, lat)
		if err != nil {
			return err
		}
		r.created += n - len(errs)
		if len(errs) == 0 {
			return nil
		}
		r.refused += len(errs)
		if r.firstRefusal == nil {
			r.firstRefusal = errs[0]
		}
		if round == createRounds {
			return fmt.Errorf("loading the platform: %d creates still refused after %d more tries, the last %s after the first, first: %w",
				len(errs), createRounds, createPause*time.Duration(createRounds*(createRounds+1)/2), errs[0])
		}
		select {
		case <-time.After(createPause * time.Duration(round+1)):
		case <-ctx.Done():
			return ctx.Err()
		}
		n, lat = len(errs), nil
	}
	return nil
}

// createRounds is how many more times refused creates are made, the k-th
// time createPause × k after the one before.
const (
	createRounds = 6
	createPause  = time.Second
)

// refusals says how many creates were refused since the last call (and
// made again), or nothing.
func (r *ScaleRun) refusals() string {
	if r.refused == r.told {
		return ""
	}
	s := fmt.Sprintf("; %d refused and made again, the first: %v", r.refused-r.told, r.firstRefusal)
	r.told, r.firstRefusal = r.refused, nil
	return s
}

// liveHeap is the heap in use after a collection, and the process's
// resident size where the system says it (else 0).
func liveHeap() (heap, rss uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, residentSize()
}

// residentSize reads VmRSS from /proc/self/status; 0 where there is none.
func residentSize() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}

// idleCPU prints what the loaded platform costs with nothing happening:
// the nodes' heartbeats and conference lists.
func (r *ScaleRun) idleCPU() {
	c0, ok0 := processCPU(r.st)
	t := time.Now()
	time.Sleep(3 * time.Second)
	c1, ok1 := processCPU(r.st)
	if !ok0 || !ok1 {
		return
	}
	fmt.Fprintf(r.out, "  idle CPU         %.2f cores with %d nodes beating every %s and no creates%s\n",
		(c1-c0)/time.Since(t).Seconds(), r.b.Nodes, r.st.Config.RMS.HeartbeatInterval, LoadAverage())
}

// processCPU is the process's CPU seconds, from the stack's metrics.
func processCPU(st *stack.Stack) (float64, bool) {
	mfs, err := st.Metrics.Gather()
	if err != nil {
		return 0, false
	}
	for _, mf := range mfs {
		if mf.GetName() == "process_cpu_seconds_total" && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// conferenceSet is every conference of the store by e164, with its room
// and state.
func conferenceSet(ctx context.Context, st *stack.Stack) (map[string]confPlace, error) {
	confs, err := st.Store.AllConferences(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]confPlace, len(confs))
	for _, c := range confs {
		out[c.E164] = confPlace{room: c.Room, state: c.State}
	}
	return out, nil
}

// confPlace is a conference's room and state in the store.
type confPlace struct {
	room, state string
}

// running counts the conferences of set that run.
func running(set map[string]confPlace) int {
	n := 0
	for _, c := range set {
		if c.state == protocol.StateRunning {
			n++
		}
	}
	return n
}

func msf(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
