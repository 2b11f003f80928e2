package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/audit"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/store"
)

// Pair is two platforms in this process, each with its own store and bus
// (embedded, on loopback TCP so that each reaches the other's): platform A
// ("plat-a") and its backup B ("plat-b").
type Pair struct {
	cfg              *config.Config
	storeA, storeB   *store.Embedded
	natsA, natsB     string
	A, B             *stack.Stack
	ClientA, ClientB *apiclient.Client
	nodes, capacity  int
	log              *slog.Logger
}

const pairToken = "pair-token-0123456789"

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// StartPair starts platforms B and A, each with nodes media nodes of
// capacity conferences, and a licence of licence per class for each tenant.
func StartPair(ctx context.Context, nodes, capacity, licence int, log *slog.Logger) (*Pair, error) {
	p := &Pair{nodes: nodes, capacity: capacity, log: log}
	var err error
	if p.storeA, err = store.StartEmbedded(""); err != nil {
		return nil, err
	}
	if p.storeB, err = store.StartEmbedded(""); err != nil {
		p.storeA.Close()
		return nil, err
	}
	if p.natsA, err = freeAddr(); err != nil {
		return nil, err
	}
	if p.natsB, err = freeAddr(); err != nil {
		return nil, err
	}
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = licence
	}
	p.cfg = &config.Config{
		Platforms: []config.Platform{
			{Moid: "plat-a", Name: "Platform A", NumberSegment: "66", E164Digits: 6, Backups: []string{"plat-b"},
				Store: p.storeA.URL(), Bus: "nats://" + p.natsA,
				Rooms: []config.Room{{Moid: "room-a1", Type: "main"}, {Moid: "room-a2", Type: "secondary"}}},
			{Moid: "plat-b", Name: "Platform B", NumberSegment: "77", E164Digits: 6,
				Store: p.storeB.URL(), Bus: "nats://" + p.natsB,
				Rooms: []config.Room{{Moid: "room-b1", Type: "main"}, {Moid: "room-b2", Type: "secondary"}}},
		},
		Domains: []config.Domain{
			{Moid: "tenant-a", Name: "Tenant of A", Platform: "plat-a", License: limits},
			{Moid: "tenant-b", Name: "Tenant of B", Platform: "plat-b", License: limits},
		},
		API: config.API{Tokens: []config.Token{{Name: "drill", Token: pairToken}}},
	}
	p.cfg.Defaults()
	p.cfg.Scheduler.EndCheckInterval = 5 * time.Second
	p.cfg.Scheduler.SweepInterval = 30 * time.Second
	if err := p.cfg.Validate(); err != nil {
		return nil, err
	}
	if p.B, err = p.start(ctx, "plat-b"); err != nil {
		p.Stop()
		return nil, err
	}
	if p.A, err = p.start(ctx, "plat-a"); err != nil {
		p.Stop()
		return nil, err
	}
	p.ClientA = apiclient.New("http://"+p.A.API.Addr(), pairToken)
	p.ClientB = apiclient.New("http://"+p.B.API.Addr(), pairToken)
	if err := p.waitWatched(ctx); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// waitWatched waits until B's monitor has seen A answer: until then a
// failure of A would be measured from a backup that never watched it.
func (p *Pair) waitWatched(ctx context.Context) error {
	return pollUntil(ctx, 10*time.Second, "platform B's monitor did not see platform A answer within 10s", func() bool {
		for _, m := range p.B.PMS.Platforms().Masters {
			if m.Platform == "plat-a" && m.Observed == protocol.PlatformNormal && m.State == protocol.PlatformNormal {
				return true
			}
		}
		return false
	})
}

// start starts one platform (again, after a crash).
func (p *Pair) start(ctx context.Context, moid string) (*stack.Stack, error) {
	cfg := *p.cfg
	cfg.Platform = moid
	st, nats, prefix := p.storeA, p.natsA, "a"
	if moid == "plat-b" {
		st, nats, prefix = p.storeB, p.natsB, "b"
	}
	s, err := stack.Start(ctx, stack.Options{
		Config: &cfg, Redis: st.URL(), Listen: "127.0.0.1:0", NATSListen: nats, BusOverTCP: true,
		SimNodes: p.nodes, SimCapacity: p.capacity, NodePrefix: prefix, Log: p.log,
	})
	if err != nil {
		return nil, err
	}
	if err := WaitNodes(ctx, s, p.nodes); err != nil {
		s.Stop(context.Background())
		return nil, err
	}
	return s, nil
}

// RestartA brings platform A back after a crash.
func (p *Pair) RestartA(ctx context.Context) error {
	a, err := p.start(ctx, "plat-a")
	if err != nil {
		return err
	}
	p.A = a
	p.ClientA = apiclient.New("http://"+a.API.Addr(), pairToken)
	return nil
}

// Stop stops both platforms and their stores.
func (p *Pair) Stop() {
	for _, s := range []*stack.Stack{p.A, p.B} {
		if s != nil {
			s.Stop(context.Background())
		}
	}
	for _, s := range []*store.Embedded{p.storeA, p.storeB} {
		if s != nil {
			s.Close()
		}
	}
}

// MasterState is platform A's effective state as B's PMS holds it.
func (p *Pair) MasterState() string {
	state, _ := p.MasterStateSince()
	return state
}

// MasterStateSince is platform A's effective state as B's PMS holds it,
// and when B's PMS came to it.
func (p *Pair) MasterStateSince() (string, time.Time) {
	for _, m := range p.B.PMS.Platforms().Masters {
		if m.Platform == "plat-a" {
			return m.State, time.UnixMilli(m.SinceMs)
		}
	}
	return "", time.Time{}
}

// Audit checks both stores against both platforms' nodes (those of live
// stacks): every conference runs on exactly one live node of the platform it
// says it runs on, or waits with a reason; no conference runs twice; the
// licence counts hold.
func (p *Pair) Audit(ctx context.Context, live ...*stack.Stack) (running int, problems []string, err error) {
	seen := map[string]string{}
	for _, s := range live {
		for _, n := range s.Nodes {
			if !n.Running() {
				continue
			}
			for _, c := range n.Conferences() {
				if other, dup := seen[c.E164]; dup {
					problems = append(problems, fmt.Sprintf("%s runs on %s and %s", c.E164, other, n.ID()))
				}
				seen[c.E164] = n.ID()
			}
		}
	}
	for _, s := range live {
		in := audit.Input{Platform: s.Config.Platform, Live: map[string]bool{}, Hosted: map[string][]string{}}
		for _, n := range s.RMS.Nodes() {
			in.Live[n.Node] = n.State == protocol.NodeUp
		}
		for _, n := range s.Nodes {
			if n.Running() {
				for _, c := range n.Conferences() {
					in.Hosted[n.ID()] = append(in.Hosted[n.ID()], c.E164)
				}
			}
		}
		for _, moid := range []string{"plat-a", "plat-b"} {
			st := s.Store
			if moid != s.Config.Platform {
				if st = s.PeerStore(moid); st == nil {
					continue
				}
			}
			in.Domains = nil
			for _, d := range p.cfg.Domains {
				if d.Platform == moid {
					in.Domains = append(in.Domains, d.Moid)
				}
			}
			r, err := audit.Check(ctx, st, in)
			if err != nil {
				return 0, nil, err
			}
			running += r.Running
			for _, v := range r.Violations {
				// A node of the other platform hosts what this store does not
				// count: the duplicate check above judges those.
				if strings.Contains(v, "which the store does not know") || strings.Contains(v, "which the store attributes to") {
					continue
				}
				problems = append(problems, fmt.Sprintf("[store %s, run by %s] %s", moid, s.Config.Platform, v))
			}
			if r.Pending > 0 || r.Creating > 0 {
				problems = append(problems, fmt.Sprintf("[store %s, run by %s] %d pending-restore, %d creating", moid, s.Config.Platform, r.Pending, r.Creating))
			}
		}
	}
	return running, problems, nil
}

// First3 is the first three of l, for a line that names some.
func First3(l []string) []string {
	if len(l) > 3 {
		return l[:3]
	}
	return l
}
