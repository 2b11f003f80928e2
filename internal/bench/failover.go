package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/stack"
)

// Failover is `convene bench failover`: a media node hosting many
// conferences dies; detection and restore are timed.
type Failover struct {
	Targets    int    // empty nodes that take the conferences
	Store      string // embedded or redis (one started here)
	CPUProfile string // each run's profile, suffixed with its size and mode
	Log        *slog.Logger
}

func (b *Failover) config(n int) *config.Config {
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = n
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
	c.Scheduler.SweepInterval = time.Minute
	return c
}

// Run loads one node with n conferences, takes it away (mode crash or
// freeze) and measures; false when the platform did not settle whole.
func (b *Failover) Run(ctx context.Context, out io.Writer, mode string, n int) (bool, error) {
	opts := stack.Options{
		Config: b.config(n), Listen: "127.0.0.1:0", NATSListen: "none",
		SimNodes: 1, SimCapacity: n, Log: b.Log,
	}
	if b.Store == "redis" {
		url, stop, err := StartRedis()
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
	if err := WaitNodes(ctx, st, 1); err != nil {
		return false, err
	}
	client := apiclient.New("http://"+st.API.Addr(), Token)
	errs, err := Loader{Concurrency: 32}.DriveDomain(ctx, client, "bench", n, nil)
	if err != nil {
		return false, err
	}
	if len(errs) > 0 {
		return false, fmt.Errorf("loading the node: %d creates refused, first: %w", len(errs), errs[0])
	}
	for i := range b.Targets {
		if err := st.AddSimNode(ctx, i+2, n); err != nil {
			return false, err
		}
	}
	if err := WaitNodes(ctx, st, 1+b.Targets); err != nil {
		return false, err
	}
	if err := WaitGraceOver(ctx, st); err != nil {
		return false, err
	}
	w, err := Watch(st)
	if err != nil {
		return false, err
	}
	defer w.Close()

	profile := ""
	if b.CPUProfile != "" {
		profile = fmt.Sprintf("%s.%d.%s", b.CPUProfile, n, mode)
	}
	stopProfile, err := StartCPUProfile(profile)
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
	detected, err := w.WaitDown(ctx, victim, 30*time.Second)
	if err != nil {
		return false, err
	}
	recovered, lat, err := w.WaitRunning(ctx, n, 60*time.Second)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(out, "bench failover: %s of a node hosting %d conferences, %d target nodes, store %s%s\n", mode, n, b.Targets, b.Store, LoadAverage())
	fmt.Fprintf(out, "  detection        %s\n", Ms(detected.Sub(killed)))
	fmt.Fprintf(out, "  all running      %s after detection (%s after the %s)\n", Ms(recovered.Sub(detected)), Ms(recovered.Sub(killed)), mode)
	for i := range lat {
		lat[i] = w.Start.Add(lat[i]).Sub(detected)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Fprintf(out, "  per conference   p50 %s  p99 %s after detection\n", Ms(lat[len(lat)/2]), Ms(lat[len(lat)*99/100]))
	if mode == "freeze" {
		// Wake the frozen node: its stale copies must be ended.
		thawed := time.Now()
		st.Nodes[0].SetFault(medianode.Fault{})
		if at, ok := WaitUndoubled(ctx, st, []int{0}, 30*time.Second); ok {
			fmt.Fprintf(out, "  doubled until    %s after the node came back\n", Ms(at.Sub(thawed)))
		} else {
			fmt.Fprintf(out, "  doubled until    still doubled 30 s after the node came back\n")
		}
	}
	return AuditSettled(ctx, out, st, n)
}
