package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
)

// scaleFlatness is how much create p99 may grow from 10% to 100% of the
// load.
const scaleFlatness = 1.2

// restoreLimit is how long the conferences of a lost node or room have to
// run again before the run goes on to its audit (which then fails).
const restoreLimit = 2 * time.Minute

type scaleBench struct {
	nodes, rooms, conferences int
	concurrency, sample       int
	store, logLevel           string
	cpuProfile                string
}

func init() { benchCommands = append(benchCommands, benchScaleCmd) }

func benchScaleCmd() *cobra.Command {
	b := scaleBench{}
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "A platform of many nodes and conferences: create latency as it fills, memory, then a crash, a freeze and a room failure",
		Long: `Starts one platform in this process with --nodes simulated media nodes
spread over --rooms server rooms, and fills it with --conferences running
conferences through the HTTP API. On the way it times --sample creates
(in three batches, counted in the load) as it reaches 10%, 50% and 100%
of the load and prints their p50 and p99 (each the median of the three
batches'), and whether p99 at 100% stays within 20% of p99 at 10%.

Then memory: live heap after a collection and the process's resident
size, per running conference, and per conference added from 10% to 100%
(the cost of a conference apart from the platform's fixed cost).

Then, one after another on the full platform:

  crash         the most loaded node dies (its bus connection closes)
  freeze, thaw  the most loaded live node hangs (heartbeats stop, the
                connection stays); once its conferences run elsewhere it
                comes back
  room failure  an operator fails the room hosting the most conferences
                (POST /v1/rooms/{moid}/fail); its conferences move to the
                other rooms

each with its detection, the time until all its conferences run again,
the time until no conference is hosted by two nodes, and an audit: every
invariant holds, and the conferences running are the very ones that ran
before. It exits 1 when an audit fails or a conference is lost.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := b.validate(); err != nil {
				return err
			}
			tuneGC()
			stop, err := startCPUProfile(b.cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
			res, err := b.run(cmd.Context(), cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if !res.ok() {
				return exitCode(1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&b.nodes, "nodes", 1000, "simulated media nodes")
	f.IntVar(&b.rooms, "rooms", 2, "server rooms the nodes are spread over (at least 2: one fails)")
	f.IntVar(&b.conferences, "conferences", 100000, "running conferences at full load")
	f.IntVar(&b.concurrency, "concurrency", 32, "creates in flight at once")
	f.IntVar(&b.sample, "sample", 6000, "timed creates at each of 10%, 50% and 100% of the load, in three batches")
	f.StringVar(&b.store, "store", "embedded", "embedded or redis (a redis-server this command starts)")
	f.StringVar(&b.logLevel, "log-level", "error", "log level of the services")
	f.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	return cmd
}

func (b *scaleBench) validate() error {
	switch {
	case b.rooms < 2:
		return fmt.Errorf("--rooms %d: give at least 2, one of them fails", b.rooms)
	case b.nodes < 2*b.rooms:
		return fmt.Errorf("--nodes %d: give at least two per room (%d)", b.nodes, 2*b.rooms)
	case b.concurrency < 1:
		return fmt.Errorf("--concurrency %d: give at least 1", b.concurrency)
	case b.sample < 3:
		return fmt.Errorf("--sample %d: give at least 3, one per batch", b.sample)
	case b.conferences/10 < b.sample:
		return fmt.Errorf("--sample %d: at most 10%% of --conferences (%d)", b.sample, b.conferences/10)
	case b.store != "embedded" && b.store != "redis":
		return fmt.Errorf("--store %q: use embedded or redis", b.store)
	}
	return nil
}

// capacity lets each node take its share of a failed room's conferences
// and of a crashed and a frozen node's, with room to spare: half again the
// most a node of the rooms left would hold on average.
func (b *scaleBench) capacity() int {
	left := b.nodes - (b.nodes+b.rooms-1)/b.rooms - 2
	return (b.conferences+left-1)/left*3/2 + 1
}

func (b *scaleBench) config() *config.Config {
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = b.conferences
	}
	rooms := make([]config.Room, b.rooms)
	for i := range rooms {
		rooms[i] = config.Room{Moid: "bench-r" + strconv.Itoa(i+1), Type: "secondary"}
	}
	rooms[0].Type = "main"
	c := &config.Config{
		Platforms: []config.Platform{{Moid: "bench", NumberSegment: "7", E164Digits: 7, Rooms: rooms}},
		Domains:   []config.Domain{{Moid: "bench", License: limits}},
		API:       config.API{Tokens: []config.Token{{Name: "bench", Token: benchToken}}},
	}
	c.Defaults()
	c.Scheduler.EndCheckInterval = 10 * time.Second
	c.Scheduler.SweepInterval = time.Minute
	return c
}

// scaleRun is one run's platform and what it measured.
type scaleRun struct {
	b       *scaleBench
	out     io.Writer
	st      *stack.Stack
	gen     *rawTarget
	created int

	refused, told int   // creates refused; of them, those printed
	firstRefusal  error // the first refused since the last print

	p99    []time.Duration // at each point
	audits []bool          // each step's audit, true when it held
	lost   int             // conferences that ran before the failures and not after
}

// ok reports whether every audit held and no conference was lost.
func (r *scaleRun) ok() bool {
	return len(r.audits) > 0 && r.lost == 0 && !slices.Contains(r.audits, false)
}

// flat reports p99 at 100% over p99 at 10%.
func (r *scaleRun) flat() float64 {
	if len(r.p99) < 3 || r.p99[0] <= 0 {
		return 0
	}
	return float64(r.p99[2]) / float64(r.p99[0])
}

func (b *scaleBench) run(ctx context.Context, out io.Writer) (*scaleRun, error) {
	opts := stack.Options{
		Config: b.config(), Listen: "127.0.0.1:0", NATSListen: "none",
		Log: newLogger(os.Stderr, b.logLevel),
	}
	if b.store == "redis" {
		url, stop, err := benchRedis()
		if err != nil {
			return nil, err
		}
		defer stop()
		opts.Redis = url
	}
	fmt.Fprintf(out, "bench scale: %d simulated nodes in %d rooms (capacity %d conferences each), %d conferences, concurrency %d, store %s%s\n",
		b.nodes, b.rooms, b.capacity(), b.conferences, b.concurrency, b.store, loadAverage())
	t0 := time.Now()
	st, err := stack.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer st.Stop(context.Background())
	for i := range b.nodes {
		if err := st.AddSimNode(ctx, i+1, b.capacity()); err != nil {
			return nil, err
		}
	}
	// waitNodes allows 10 s; many nodes may take a few of those rounds.
	for try := 0; ; try++ {
		err := waitNodes(ctx, st, b.nodes)
		if err == nil {
			break
		}
		if try == 5 {
			return nil, err
		}
	}
	fmt.Fprintf(out, "  nodes up         %d in %s\n", b.nodes, ms(time.Since(t0)))
	r := &scaleRun{b: b, out: out, st: st, gen: &rawTarget{addr: st.API.Addr(), token: benchToken}}
	if err := r.load(ctx); err != nil {
		return nil, err
	}
	before, err := runningSet(ctx, st)
	if err != nil {
		return nil, err
	}
	if len(before) != b.conferences {
		return nil, fmt.Errorf("%d of %d conferences run after the load", len(before), b.conferences)
	}
	r.idleCPU()
	if err := r.crash(ctx, before); err != nil {
		return nil, err
	}
	if err := r.freeze(ctx, before); err != nil {
		return nil, err
	}
	if err := r.failRoom(ctx, before); err != nil {
		return nil, err
	}
	verdict := "PASS: every audit holds, no conference lost or doubled"
	if !r.ok() {
		verdict = "FAIL: an audit failed or a conference was lost"
	}
	fmt.Fprintf(out, "result: %s; %d creates refused (and made again); %s in all%s\n", verdict, r.refused, ms(time.Since(t0)), loadAverage())
	return r, nil
}

// load fills the platform to 10%, 50% and 100% of the conferences,
// timing b.sample creates just before each point, and measures memory.
func (r *scaleRun) load(ctx context.Context) error {
	b := r.b
	points := []int{b.conferences / 10, b.conferences / 2, b.conferences}
	heap0, _ := liveHeap()
	var heap10 uint64
	for i, p := range points {
		fillTo := p - b.sample
		t := time.Now()
		n := fillTo - r.created
		if err := r.create(ctx, n, nil); err != nil {
			return err
		}
		fill := float64(n) / time.Since(t).Seconds()
		var p50s, p99s []time.Duration
		t = time.Now()
		for k := range 3 {
			size := b.sample / 3
			if k == 2 {
				size = b.sample - 2*size
			}
			lat := make([]time.Duration, size)
			if err := r.create(ctx, size, lat); err != nil {
				return err
			}
			slices.Sort(lat)
			p50s = append(p50s, lat[len(lat)/2])
			p99s = append(p99s, lat[min(len(lat)-1, len(lat)*99/100)])
		}
		rate := float64(b.sample) / time.Since(t).Seconds()
		slices.Sort(p50s)
		slices.Sort(p99s)
		r.p99 = append(r.p99, p99s[1])
		fmt.Fprintf(r.out, "  create at %3d%%   %d running: p50 %s  p99 %s  (medians of 3 batches of %d, %.0f creates/s; filled at %.0f/s%s)\n",
			p*100/b.conferences, p, msf(p50s[1]), msf(p99s[1]), b.sample/3, rate, fill, r.refusals())
		if i == 0 {
			heap10, _ = liveHeap()
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
		rssText = perConf(rss, b.conferences)
	}
	fmt.Fprintf(r.out, "  memory           %s live heap, %s process RSS per running conference at %d (all of the platform in this process, %d nodes' copies included)\n",
		perConf(heap, b.conferences), rssText, b.conferences, b.nodes)
	added := points[2] - points[0]
	grown := uint64(0)
	if heap > heap10 {
		grown = heap - heap10
	}
	fmt.Fprintf(r.out, "  memory added     %s live heap per conference added from %d to %d; %.1f MB live heap with no conference\n",
		perConf(grown, added), points[0], points[2], float64(heap0)/(1<<20))
	return nil
}

// create makes n conferences, recording each latency in lat when given.
// Refused creates are counted and made again, untimed, for up to three
// more rounds: the load must reach its size to be measured.
func (r *scaleRun) create(ctx context.Context, n int, lat []time.Duration) error {
	loader := createBench{concurrency: r.b.concurrency}
	for round := 0; n > 0; round++ {
		errs, err := loader.driveWith(ctx, nil, r.gen, 0, "bench", n, lat)
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
		if round == 3 {
			return fmt.Errorf("loading the platform: %d creates still refused after three more tries, first: %w", len(errs), errs[0])
		}
		n, lat = len(errs), nil
	}
	return nil
}

// refusals says how many creates were refused since the last call (and
// made again), or nothing.
func (r *scaleRun) refusals() string {
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
func (r *scaleRun) idleCPU() {
	c0, ok0 := processCPU(r.st)
	t := time.Now()
	time.Sleep(3 * time.Second)
	c1, ok1 := processCPU(r.st)
	if !ok0 || !ok1 {
		return
	}
	fmt.Fprintf(r.out, "  idle CPU         %.2f cores with %d nodes beating every %s and no creates%s\n",
		(c1-c0)/time.Since(t).Seconds(), r.b.nodes, r.st.Config.RMS.HeartbeatInterval, loadAverage())
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

// runningSet is every running conference by e164, with its room.
func runningSet(ctx context.Context, st *stack.Stack) (map[string]string, error) {
	confs, err := st.Store.AllConferences(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(confs))
	for _, c := range confs {
		if c.State == protocol.StateRunning {
			out[c.E164] = c.Room
		}
	}
	return out, nil
}

// mostLoaded is the running node hosting the most conferences, not one of
// skip, and how many it hosts.
func mostLoaded(st *stack.Stack, skip ...int) (int, int) {
	best, most := -1, -1
	for i, n := range st.Nodes {
		if !n.Running() || slices.Contains(skip, i) {
			continue
		}
		if c := len(n.Numbers()); c > most {
			best, most = i, c
		}
	}
	return best, most
}

func (r *scaleRun) crash(ctx context.Context, before map[string]string) error {
	i, n := mostLoaded(r.st)
	fmt.Fprintf(r.out, "crash of %s, the most loaded node (%d conferences)%s\n", r.st.Nodes[i].ID(), n, loadAverage())
	w, err := watch(r.st)
	if err != nil {
		return err
	}
	defer w.close()
	killed := time.Now()
	r.st.KillNode(i)
	detected, err := r.detectAndRestore(ctx, w, i, killed, n)
	if err != nil {
		return err
	}
	r.printUndoubled(ctx, allNodes(r.st), detected, "detection")
	return r.audit(ctx, before, "")
}

func (r *scaleRun) freeze(ctx context.Context, before map[string]string) error {
	crashed := slices.IndexFunc(r.st.Nodes, func(n *medianode.Node) bool { return !n.Running() })
	i, n := mostLoaded(r.st, crashed)
	fmt.Fprintf(r.out, "freeze of %s, the most loaded live node (%d conferences), and thaw%s\n", r.st.Nodes[i].ID(), n, loadAverage())
	w, err := watch(r.st)
	if err != nil {
		return err
	}
	defer w.close()
	frozen := time.Now()
	r.st.FreezeNode(i)
	if _, err := r.detectAndRestore(ctx, w, i, frozen, n); err != nil {
		return err
	}
	// Wake the node: its stale copies must be ended.
	thawed := time.Now()
	r.st.Nodes[i].SetFault(medianode.Fault{})
	r.printUndoubled(ctx, []int{i}, thawed, "the node came back")
	return r.audit(ctx, before, "")
}

// detectAndRestore waits for node i's down notice and for its n
// conferences to run again, and prints both; it answers the detection.
func (r *scaleRun) detectAndRestore(ctx context.Context, w *watcher, i int, at time.Time, n int) (time.Time, error) {
	detected, err := w.waitDown(ctx, r.st.Nodes[i].ID(), 30*time.Second)
	if err != nil {
		return detected, err
	}
	fmt.Fprintf(r.out, "  detection        %s\n", ms(detected.Sub(at)))
	recovered, _, err := w.waitRunning(ctx, n, restoreLimit)
	if err != nil {
		if ctx.Err() != nil {
			return detected, err
		}
		fmt.Fprintf(r.out, "  all running      never: %v\n", err)
		return detected, nil
	}
	fmt.Fprintf(r.out, "  all running      %s after detection\n", ms(recovered.Sub(detected)))
	return detected, nil
}

// printUndoubled waits until no conference the nodes host is hosted by
// another node too, and prints when, after since. When none is at the
// first look it says so: they were ended before it, if there were any.
func (r *scaleRun) printUndoubled(ctx context.Context, nodes []int, since time.Time, what string) {
	limit := time.Minute
	if doubled(r.st, nodes) == 0 {
		fmt.Fprintf(r.out, "  doubled until    none left %s after %s, when all ran again\n", ms(time.Since(since)), what)
		return
	}
	if at, ok := waitUndoubled(ctx, r.st, nodes, limit); ok {
		fmt.Fprintf(r.out, "  doubled until    %s after %s\n", ms(max(0, at.Sub(since))), what)
	} else {
		fmt.Fprintf(r.out, "  doubled until    still doubled %s after %s\n", limit, what)
	}
}

func allNodes(st *stack.Stack) []int {
	out := make([]int, len(st.Nodes))
	for i := range out {
		out[i] = i
	}
	return out
}

func (r *scaleRun) failRoom(ctx context.Context, before map[string]string) error {
	now, err := runningSet(ctx, r.st)
	if err != nil {
		return err
	}
	perRoom := map[string]int{}
	for _, room := range now {
		perRoom[room]++
	}
	room := ""
	for _, rm := range r.st.Config.Local().Rooms {
		if room == "" || perRoom[rm.Moid] > perRoom[room] {
			room = rm.Moid
		}
	}
	var inRoom []int
	nodeRoom := map[string]string{}
	for _, n := range r.st.RMS.Nodes() {
		nodeRoom[n.Node] = n.Room
	}
	for i, n := range r.st.Nodes {
		if nodeRoom[n.ID()] == room {
			inRoom = append(inRoom, i)
		}
	}
	n := perRoom[room]
	fmt.Fprintf(r.out, "room failure of %s (%d nodes, %d conferences)%s\n", room, len(inRoom), n, loadAverage())
	w, err := watch(r.st)
	if err != nil {
		return err
	}
	defer w.close()
	rw, err := watchRoom(r.st, room)
	if err != nil {
		return err
	}
	defer rw.close()
	client := apiclient.New("http://"+r.st.API.Addr(), benchToken)
	failed := time.Now()
	if _, err := client.FailRoom(ctx, room, "bench scale"); err != nil {
		return err
	}
	detected, err := rw.wait(ctx, 30*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "  detection        %s (the room's failure notice)\n", ms(detected.Sub(failed)))
	recovered, _, err := w.waitRunning(ctx, n, restoreLimit)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		fmt.Fprintf(r.out, "  all running      never: %v\n", err)
	default:
		fmt.Fprintf(r.out, "  all running      %s after detection, in the other rooms\n", ms(recovered.Sub(detected)))
	}
	r.printUndoubled(ctx, inRoom, failed, "the failure")
	return r.audit(ctx, before, room)
}

// audit waits for the platform to settle and audits it, then checks that
// the conferences running are those of before, none of them in the failed
// room.
func (r *scaleRun) audit(ctx context.Context, before map[string]string, failedRoom string) error {
	ok, err := auditSettled(ctx, r.out, r.st, len(before))
	if err != nil {
		return err
	}
	now, err := runningSet(ctx, r.st)
	if err != nil {
		return err
	}
	lost, extra, inFailed := 0, 0, 0
	var some []string
	for e := range before {
		if _, ok := now[e]; !ok {
			lost++
			if len(some) < 5 {
				some = append(some, e)
			}
		}
	}
	slices.Sort(some)
	for e, room := range now {
		if _, ok := before[e]; !ok {
			extra++
		}
		if failedRoom != "" && room == failedRoom {
			inFailed++
		}
	}
	r.lost = max(r.lost, lost)
	switch {
	case lost == 0 && extra == 0 && inFailed == 0:
		fmt.Fprintf(r.out, "  identity         the same %d conferences run as before the failures\n", len(before))
	default:
		ok = false
		fmt.Fprintf(r.out, "  identity         %d of the conferences of before no longer run (such as %s), %d run that did not, %d still run in the failed room\n",
			lost, strings.Join(some, " "), extra, inFailed)
	}
	r.audits = append(r.audits, ok)
	return nil
}

// roomWatch hears PMS's room notices and answers when a room was first
// said to have failed.
type roomWatch struct {
	sub  *bus.Subscription
	room string
	mu   sync.Mutex
	at   time.Time
	wake chan struct{}
}

func watchRoom(st *stack.Stack, room string) (*roomWatch, error) {
	rw := &roomWatch{room: room, wake: make(chan struct{}, 1)}
	sub, err := st.Bus.Subscribe(protocol.SubjectServerRoomNotify, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var ntf protocol.ServerRoomStateNtf
		if m.Decode(&ntf) != nil || ntf.Platform != st.Config.Platform {
			return
		}
		for _, r := range ntf.Rooms {
			if r.Room == room && r.State == protocol.RoomAbnormal {
				rw.mu.Lock()
				if rw.at.IsZero() {
					rw.at = time.Now()
				}
				rw.mu.Unlock()
				select {
				case rw.wake <- struct{}{}:
				default:
				}
			}
		}
	}))
	if err != nil {
		return nil, err
	}
	rw.sub = sub
	if err := st.Bus.Flush(context.Background()); err != nil {
		rw.close()
		return nil, err
	}
	return rw, nil
}

func (rw *roomWatch) close() { _ = rw.sub.Unsubscribe() }

func (rw *roomWatch) wait(ctx context.Context, limit time.Duration) (time.Time, error) {
	deadline := time.After(limit)
	for {
		rw.mu.Lock()
		at := rw.at
		rw.mu.Unlock()
		if !at.IsZero() {
			return at, nil
		}
		select {
		case <-rw.wake:
		case <-deadline:
			return time.Time{}, errors.New("room " + rw.room + ": no failure notice within " + limit.String())
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

func msf(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
