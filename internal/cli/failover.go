package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
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

type failoverBench struct {
	sizes      []int
	targets    int
	modes      []string
	store      string
	logLevel   string
	cpuProfile string
}

func init() { benchCommands = append(benchCommands, benchFailoverCmd) }

func benchFailoverCmd() *cobra.Command {
	var b failoverBench
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Kill a media node hosting many conferences; time detection and restore",
		Long: `Loads one simulated media node with N conferences, adds empty nodes,
then takes the loaded node away and measures, on the embedded defaults
(heartbeat 200 ms, 4 missed beats):

  detection      from the node's death to RMS's down notice
  all running    from detection until every conference runs again
  per conf       from detection to each conference's running notice (p50, p99)
  doubled until  freeze only: from the node's return until no conference
                 is hosted by two nodes (its stale copies ended)

A node can die two ways: "crash" (its process dies: its bus connection
closes) and "freeze" (it hangs: heartbeats stop, the connection stays;
then it comes back). --mode both runs each size in both. Every run ends
with an audit of the platform's invariants.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			modes, err := failoverModes(b.modes)
			if err != nil {
				return err
			}
			tuneGC()
			failed := false
			for _, n := range b.sizes {
				for _, mode := range modes {
					ok, err := b.run(cmd.Context(), cmd.OutOrStdout(), mode, n)
					if err != nil {
						return err
					}
					failed = failed || !ok
				}
			}
			if failed {
				return exitCode(1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&b.sizes, "conferences", []int{1000, 10000}, "conferences on the node that dies, comma-separated (one run each)")
	f.IntVar(&b.targets, "targets", 3, "empty nodes that take the conferences")
	f.StringSliceVar(&b.modes, "mode", []string{"both"}, "how the node dies: crash, freeze or both")
	f.StringVar(&b.store, "store", "embedded", "embedded or redis (a redis-server this command starts)")
	f.StringVar(&b.logLevel, "log-level", "error", "log level of the services")
	f.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of each run's failover (from the death to the audit) to this file, suffixed with the size and mode")
	return cmd
}

// failoverModes expands --mode: crash, freeze, both.
func failoverModes(in []string) ([]string, error) {
	var out []string
	for _, m := range in {
		switch m {
		case "crash", "freeze":
			out = append(out, m)
		case "both":
			out = append(out, "crash", "freeze")
		default:
			return nil, fmt.Errorf("--mode %q: use crash, freeze or both", m)
		}
	}
	return out, nil
}

func (b *failoverBench) config(n int) *config.Config {
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = n
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
	c.Scheduler.SweepInterval = time.Minute
	return c
}

func (b *failoverBench) run(ctx context.Context, out io.Writer, mode string, n int) (bool, error) {
	opts := stack.Options{
		Config: b.config(n), Listen: "127.0.0.1:0", NATSListen: "none",
		SimNodes: 1, SimCapacity: n, Log: newLogger(os.Stderr, b.logLevel),
	}
	if b.store == "redis" {
		url, stop, err := benchRedis()
		if err != nil {
			return false, err
		}
		defer stop()
		opts.Redis = url
	}
	st, err := stack.Start(ctx, opts)
	if err != nil {
		return false, err
	}
	defer st.Stop(context.Background())
	if err := waitNodes(ctx, st, 1); err != nil {
		return false, err
	}
	client := apiclient.New("http://"+st.API.Addr(), benchToken)
	loader := createBench{concurrency: 32}
	errs, err := loader.drive(ctx, client, n, nil)
	if err != nil {
		return false, err
	}
	if len(errs) > 0 {
		return false, fmt.Errorf("loading the node: %d creates refused, first: %w", len(errs), errs[0])
	}
	for i := range b.targets {
		if err := st.AddSimNode(ctx, i+2, n); err != nil {
			return false, err
		}
	}
	if err := waitNodes(ctx, st, 1+b.targets); err != nil {
		return false, err
	}
	w, err := watch(st)
	if err != nil {
		return false, err
	}
	defer w.close()

	profile := ""
	if b.cpuProfile != "" {
		profile = fmt.Sprintf("%s.%d.%s", b.cpuProfile, n, mode)
	}
	stopProfile, err := startCPUProfile(profile)
	if err != nil {
		return false, err
	}
	defer stopProfile()
	victim := st.Nodes[0].ID()
	killed := time.Now()
	if mode == "crash" {
		st.KillNode(0)
	} else {
		st.FreezeNode(0)
	}
	detected, err := w.waitDown(ctx, victim, 30*time.Second)
	if err != nil {
		return false, err
	}
	recovered, lat, err := w.waitRunning(ctx, n, 60*time.Second)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(out, "bench failover: %s of a node hosting %d conferences, %d target nodes, store %s%s\n", mode, n, b.targets, b.store, loadAverage())
	fmt.Fprintf(out, "  detection        %s\n", ms(detected.Sub(killed)))
	fmt.Fprintf(out, "  all running      %s after detection (%s after the %s)\n", ms(recovered.Sub(detected)), ms(recovered.Sub(killed)), mode)
	for i := range lat {
		lat[i] = w.start.Add(lat[i]).Sub(detected)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Fprintf(out, "  per conference   p50 %s  p99 %s after detection\n", ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]))
	if mode == "freeze" {
		// Wake the frozen node: its stale copies must be ended.
		thawed := time.Now()
		st.Nodes[0].SetFault(medianode.Fault{})
		if at, ok := waitUndoubled(ctx, st, []int{0}, 30*time.Second); ok {
			fmt.Fprintf(out, "  doubled until    %s after the node came back\n", ms(at.Sub(thawed)))
		} else {
			fmt.Fprintf(out, "  doubled until    still doubled 30 s after the node came back\n")
		}
	}
	return auditSettled(ctx, out, st, n)
}

// loadAverage is the machine's load average, where the system says it,
// for figures taken on a shared machine.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return ", load average " + strings.Join(f[:3], " ")
}

// waitUndoubled waits until no conference that the given nodes host is
// hosted by another running simulated node too, and answers when it saw
// that first.
func waitUndoubled(ctx context.Context, st *stack.Stack, nodes []int, limit time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(limit)
	for {
		now := time.Now()
		if doubled(st, nodes) == 0 {
			return now, true
		}
		if now.After(deadline) {
			return time.Time{}, false
		}
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// doubled counts the conferences the given nodes host that another
// running node hosts too.
func doubled(st *stack.Stack, nodes []int) int {
	mine := map[string]int{} // e164 -> the last of nodes that hosts it
	for _, i := range nodes {
		for _, e := range st.Nodes[i].Numbers() {
			mine[e] = i
		}
	}
	n := 0
	for j, other := range st.Nodes {
		if len(mine) == 0 {
			break
		}
		if !other.Running() {
			continue
		}
		for _, e := range other.Numbers() {
			if i, ok := mine[e]; ok && i != j {
				n++
				delete(mine, e)
			}
		}
	}
	return n
}

// auditSettled waits for the platform to settle with n conferences
// running and audits it.
func auditSettled(ctx context.Context, out io.Writer, st *stack.Stack, n int) (bool, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := st.Audit(ctx)
		if err != nil {
			return false, err
		}
		settled := r.OK() && r.Creating == 0 && r.Pending == 0 && r.Running == n
		if settled || time.Now().After(deadline) {
			fmt.Fprintf(out, "  audit            %s\n", r)
			return settled, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// watcher hears RMS's node notices and the scheduler's running notices.
type watcher struct {
	subs    []*bus.Subscription
	start   time.Time
	mu      sync.Mutex
	down    map[string]time.Time
	running map[string]time.Duration
	wake    chan struct{}
}

func watch(st *stack.Stack) (*watcher, error) {
	w := &watcher{start: time.Now(), down: map[string]time.Time{}, running: map[string]time.Duration{}, wake: make(chan struct{}, 1)}
	poke := func() {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	s1, err := st.Bus.Subscribe(protocol.SubjectRMSNotify(st.Config.Platform), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var ntf protocol.NodeStateNtf
		if m.Decode(&ntf) == nil && ntf.State == protocol.NodeDown {
			w.mu.Lock()
			if _, ok := w.down[ntf.Node]; !ok {
				w.down[ntf.Node] = time.Now()
			}
			w.mu.Unlock()
			poke()
		}
	}))
	if err != nil {
		return nil, err
	}
	s2, err := st.Bus.Subscribe(protocol.SubjectCMNotifications, bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		if m.Type != protocol.MAUConfStateNtf {
			return
		}
		var ntf protocol.ConfStateNtf
		if m.Decode(&ntf) == nil && ntf.State == protocol.StateRunning {
			now := time.Now()
			w.mu.Lock()
			if _, ok := w.running[ntf.E164]; !ok {
				w.running[ntf.E164] = now.Sub(w.start)
			}
			w.mu.Unlock()
			poke()
		}
	}))
	if err != nil {
		_ = s1.Unsubscribe()
		return nil, err
	}
	w.subs = []*bus.Subscription{s1, s2}
	if err := st.Bus.Flush(context.Background()); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *watcher) close() {
	for _, s := range w.subs {
		_ = s.Unsubscribe()
	}
}

func (w *watcher) waitDown(ctx context.Context, node string, limit time.Duration) (time.Time, error) {
	deadline := time.After(limit)
	for {
		w.mu.Lock()
		t, ok := w.down[node]
		w.mu.Unlock()
		if ok {
			return t, nil
		}
		select {
		case <-w.wake:
		case <-deadline:
			return time.Time{}, fmt.Errorf("node %s was not declared down within %s", node, limit)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// waitRunning waits for n running notices; it answers when the last came
// and each one's time since the watch began (callers rebase it).
func (w *watcher) waitRunning(ctx context.Context, n int, limit time.Duration) (time.Time, []time.Duration, error) {
	deadline := time.After(limit)
	for {
		w.mu.Lock()
		got := len(w.running)
		w.mu.Unlock()
		if got >= n {
			w.mu.Lock()
			defer w.mu.Unlock()
			lat := make([]time.Duration, 0, len(w.running))
			var last time.Duration
			for _, d := range w.running {
				lat = append(lat, d)
				last = max(last, d)
			}
			return w.start.Add(last), lat, nil
		}
		select {
		case <-w.wake:
		case <-deadline:
			return time.Time{}, nil, fmt.Errorf("only %d of %d conferences running again after %s", got, n, limit)
		case <-ctx.Done():
			return time.Time{}, nil, ctx.Err()
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
