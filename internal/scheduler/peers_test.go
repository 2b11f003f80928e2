package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// fakeEvents records what the service list set off, in order.
type fakeEvents struct{ got []string }

func (f *fakeEvents) connected(_ context.Context, info protocol.PlatformInfo, _ Peer) {
	f.got = append(f.got, "connected "+info.Platform)
}
func (f *fakeEvents) standDown()                           { f.got = append(f.got, "stand down") }
func (f *fakeEvents) serveAgain(context.Context)           { f.got = append(f.got, "serve again") }
func (f *fakeEvents) failover(_ context.Context, p string) { f.got = append(f.got, "failover "+p) }
func (f *fakeEvents) failback(_ context.Context, p string) { f.got = append(f.got, "failback "+p) }
func (f *fakeEvents) take() []string                       { g := f.got; f.got = nil; return g }

// fakeDialer reaches the platforms not listed in down, and counts the
// dials.
type fakeDialer struct {
	down  map[string]bool
	dials map[string]int
}

func (d *fakeDialer) dial(_ context.Context, info protocol.PlatformInfo) (Peer, error) {
	d.dials[info.Platform]++
	if d.down[info.Platform] {
		return Peer{}, errors.New("connection refused")
	}
	return Peer{}, nil
}

// notice is PMS's word on this platform (p1) and its masters.
func notice(own string, masters ...string) protocol.PlatformStateNtf {
	ntf := protocol.PlatformStateNtf{Platform: "p1", State: own}
	for _, m := range masters {
		moid, state, _ := strings.Cut(m, "=")
		info := protocol.PlatformInfo{Platform: moid, State: state}
		if s, closed := strings.CutSuffix(state, "/closed"); closed {
			info.State, info.DRMode = s, protocol.DRClosed
		}
		ntf.Masters = append(ntf.Masters, info)
	}
	return ntf
}

const (
	normal   = protocol.PlatformNormal
	abnormal = protocol.PlatformAbnormal
)

// The service list follows PMS's notices: a failed master is served (and
// taken over) once connected, unless its disaster recovery is closed; a
// recovered one is handed back; this platform switched over stands down.
func TestServiceList(t *testing.T) {
	type step struct {
		ntf       protocol.PlatformStateNtf
		unreached []string // masters the dialer cannot reach at this step
		want      []string // what the step sets off, in order
		served    []string // the service list after it
	}
	tests := []struct {
		name  string
		steps []step
		dials map[string]int
	}{
		{name: "all normal: connected, nothing taken over",
			steps: []step{
				{ntf: notice(normal, "pa="+normal, "pb="+normal), want: []string{"connected pa", "connected pb"}, served: []string{"p1"}},
				{ntf: notice(normal, "pa="+normal, "pb="+normal), served: []string{"p1"}},
			},
			dials: map[string]int{"pa": 1, "pb": 1}},
		{name: "a master fails: taken over once",
			steps: []step{
				{ntf: notice(normal, "pa="+normal), want: []string{"connected pa"}, served: []string{"p1"}},
				{ntf: notice(normal, "pa="+abnormal), want: []string{"failover pa"}, served: []string{"p1", "pa"}},
				{ntf: notice(normal, "pa="+abnormal), served: []string{"p1", "pa"}},
			},
			dials: map[string]int{"pa": 1}},
		{name: "a master failed before the first notice: connected, then taken over",
			steps: []step{
				{ntf: notice(normal, "pa="+abnormal), want: []string{"connected pa", "failover pa"}, served: []string{"p1", "pa"}},
			}},
		{name: "a failed master recovers: handed back",
			steps: []step{
				{ntf: notice(normal, "pa="+abnormal), want: []string{"connected pa", "failover pa"}, served: []string{"p1", "pa"}},
				{ntf: notice(normal, "pa="+normal), want: []string{"failback pa"}, served: []string{"p1"}},
				{ntf: notice(normal, "pa="+normal), served: []string{"p1"}},
			}},
		{name: "disaster recovery closed: a failed master is not taken over",
			steps: []step{
				{ntf: notice(normal, "pa="+abnormal+"/closed"), want: []string{"connected pa"}, served: []string{"p1"}},
			}},
		{name: "disaster recovery closed while taken over: handed back",
			steps: []step{
				{ntf: notice(normal, "pa="+abnormal), want: []string{"connected pa", "failover pa"}, served: []string{"p1", "pa"}},
				{ntf: notice(normal, "pa="+abnormal+"/closed"), want: []string{"failback pa"}, served: []string{"p1"}},
			}},
		{name: "a failed master that cannot be reached: not served until it is",
			steps: []step{
				{ntf: notice(normal, "pa="+abnormal), unreached: []string{"pa"}, served: []string{"p1"}},
				{ntf: notice(normal, "pa="+abnormal), unreached: []string{"pa"}, served: []string{"p1"}},
				{ntf: notice(normal, "pa="+abnormal), want: []string{"connected pa", "failover pa"}, served: []string{"p1", "pa"}},
			},
			dials: map[string]int{"pa": 3}},
		{name: "a platform that is not a master here: ignored",
			steps: []step{
				{ntf: notice(normal, "px="+abnormal), served: []string{"p1"}},
			},
			dials: map[string]int{}},
		{name: "this platform switched over and back",
			steps: []step{
				{ntf: notice(abnormal), want: []string{"stand down"}, served: nil},
				{ntf: notice(abnormal), served: nil},
				{ntf: notice(normal), want: []string{"serve again"}, served: []string{"p1"}},
			}},
		{name: "both at once: the own state first, failovers before failbacks",
			steps: []step{
				{ntf: notice(normal, "pa="+abnormal, "pb="+normal), want: []string{"connected pa", "connected pb", "failover pa"}, served: []string{"p1", "pa"}},
				{ntf: notice(abnormal, "pa="+normal, "pb="+abnormal), want: []string{"stand down", "failover pb", "failback pa"}, served: []string{"pb"}},
			}},
	}
	cfg := &config.Config{Platforms: []config.Platform{
		{Moid: "p1"}, {Moid: "pa", Backups: []string{"p1"}}, {Moid: "pb", Backups: []string{"p1", "pc"}}, {Moid: "px", Backups: []string{"pc"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &fakeEvents{}
			d := &fakeDialer{dials: map[string]int{}}
			p := newPeers("p1", nil, nil, cfg, 0, d.dial, ev, slog.New(slog.DiscardHandler))
			for i, s := range tt.steps {
				d.down = map[string]bool{}
				for _, m := range s.unreached {
					d.down[m] = true
				}
				p.apply(context.Background(), s.ntf)
				if got := ev.take(); fmt.Sprint(got) != fmt.Sprint(s.want) {
					t.Fatalf("step %d set off %q; want %q", i, got, s.want)
				}
				var served []string
				for _, m := range []string{"p1", "pa", "pb", "px"} {
					if p.serves(m) {
						served = append(served, m)
					}
				}
				if fmt.Sprint(served) != fmt.Sprint(s.served) {
					t.Fatalf("step %d: serving %q; want %q", i, served, s.served)
				}
				if p.ownDown() == p.serves("p1") {
					t.Fatalf("step %d: switched over %v, serving itself %v", i, p.ownDown(), p.serves("p1"))
				}
				if got := p.applied(); got.State != s.ntf.State || len(got.Masters) != len(s.ntf.Masters) {
					t.Fatalf("step %d: last applied %+v; want the notice just applied", i, got)
				}
			}
			if tt.dials != nil && fmt.Sprint(d.dials) != fmt.Sprint(tt.dials) {
				t.Fatalf("dialled %v; want %v", d.dials, tt.dials)
			}
		})
	}
}

// The stores are this platform's first, then the connected masters' in
// order; the CM of a conference is reached on its own platform's bus once
// that platform serves itself again.
func TestPeersStoresAndCMBus(t *testing.T) {
	cfg := &config.Config{Platforms: []config.Platform{
		{Moid: "p1"}, {Moid: "pb", Backups: []string{"p1"}}, {Moid: "pa", Backups: []string{"p1"}},
	}}
	ev := &fakeEvents{}
	d := &fakeDialer{dials: map[string]int{}, down: map[string]bool{"pb": true}}
	p := newPeers("p1", nil, nil, cfg, 0, d.dial, ev, slog.New(slog.DiscardHandler))
	if got := fmt.Sprint(p.masters); got != "[pa pb]" {
		t.Fatalf("masters %s; want [pa pb]", got)
	}
	platformsOf := func(ws []where) string {
		var out []string
		for _, w := range ws {
			out = append(out, w.platform)
		}
		return fmt.Sprint(out)
	}
	p.apply(context.Background(), notice(normal, "pb="+abnormal, "pa="+normal))
	if got := platformsOf(p.stores()); got != "[p1 pa]" {
		t.Fatalf("stores of %s; want [p1 pa] (pb not reached)", got)
	}
	d.down = nil
	p.apply(context.Background(), notice(normal, "pb="+abnormal, "pa="+normal))
	if got := platformsOf(p.stores()); got != "[p1 pa pb]" {
		t.Fatalf("stores of %s; want [p1 pa pb]", got)
	}
	if got := platformsOf(p.servedStores()); got != "[p1 pb]" {
		t.Fatalf("served stores of %s; want [p1 pb]", got)
	}
	if p.storeOf("nowhere") != nil {
		t.Fatal("a store for a platform not connected")
	}
}

// The addresses of a master are logged without their passwords.
func TestPeersLogNoPasswords(t *testing.T) {
	var logged bytes.Buffer
	cfg := &config.Config{Platforms: []config.Platform{{Moid: "p1"}, {Moid: "pa", Backups: []string{"p1"}}}}
	d := &fakeDialer{dials: map[string]int{}}
	p := newPeers("p1", nil, nil, cfg, 0, d.dial, &fakeEvents{}, slog.New(slog.NewTextHandler(&logged, nil)))
	ntf := notice(normal, "pa="+normal)
	ntf.Masters[0].Store = "redis://:store-secret@10.0.0.2:6379/0"
	ntf.Masters[0].Bus = "nats://css:bus-secret@10.0.0.2:4222"
	p.apply(context.Background(), ntf)
	if !strings.Contains(logged.String(), "connected to a master platform") {
		t.Fatalf("no connection logged: %s", logged.String())
	}
	for _, secret := range []string{"store-secret", "bus-secret"} {
		if strings.Contains(logged.String(), secret) {
			t.Fatalf("the log shows a password: %s", logged.String())
		}
	}
}

// Without a PMS, the masters count as normal, at the addresses the
// topology gives: connected, nothing taken over.
func TestPeersWithoutPMS(t *testing.T) {
	emb := testkit.BusServer(t, bus.EmbeddedOptions{NoListen: true})
	b := testkit.Dial(t, bus.Options{Embedded: emb, Name: "peers-test"})
	cfg := &config.Config{Platforms: []config.Platform{
		{Moid: "p1"}, {Moid: "pa", Backups: []string{"p1"}, Bus: "nats://10.0.0.2:4222", Store: "10.0.0.2:6379"},
	}}
	var dialled []protocol.PlatformInfo
	ev := &fakeEvents{}
	p := newPeers("p1", b, nil, cfg, time.Second, func(_ context.Context, info protocol.PlatformInfo) (Peer, error) {
		dialled = append(dialled, info)
		return Peer{}, nil
	}, ev, slog.New(slog.DiscardHandler))
	p.ask(context.Background())
	if got := ev.take(); fmt.Sprint(got) != "[connected pa]" {
		t.Fatalf("set off %q; want [connected pa]", got)
	}
	if len(dialled) != 1 || dialled[0].Bus != "nats://10.0.0.2:4222" || dialled[0].Store != "10.0.0.2:6379" || dialled[0].State != normal {
		t.Fatalf("dialled %+v; want pa, normal, at its configured addresses", dialled)
	}
	if !p.serves("p1") || p.serves("pa") || p.applied().State != normal {
		t.Fatalf("serving p1 %v, pa %v, applied %+v", p.serves("p1"), p.serves("pa"), p.applied())
	}
}
