package alarms_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/convene/convene/internal/alarms"
	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/redistest"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/testkit"
)

const (
	opToken = "alarms-operator-0123456789"
	roToken = "alarms-readonly-0123456789"
	tnToken = "alarms-tenant-0123456789"
)

// platform is one platform running in the test process with the alarm
// service, and every alarm event it announced.
type platform struct {
	t      *testing.T
	st     *stack.Stack
	op, ro *apiclient.Client
	tn     *apiclient.Client

	mu  sync.Mutex
	evs []apiclient.AlarmEvent
}

// startPlatform runs a platform with the alarm service: as the stack runs
// it (defaults), or checking every 100 ms (fast).
func startPlatform(t *testing.T, redis string, fast bool) *platform {
	t.Helper()
	cfg := config.Demo()
	cfg.API.Tokens = []config.Token{
		{Name: "ops", Token: opToken},
		{Name: "watch", Token: roToken, Role: config.RoleReadonly},
		{Name: "tenant", Token: tnToken, Role: config.RoleTenant, Domains: []string{"demo"}},
	}
	cfg.RMS.HeartbeatInterval = 100 * time.Millisecond
	cfg.RMS.MissedHeartbeats = 4
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	o := stack.Options{
		Config: cfg, Listen: "127.0.0.1:0", SimNodes: 2, Redis: redis,
		Records: "sqlite://" + filepath.Join(t.TempDir(), "records.db"), Alarms: !fast,
	}
	if fast {
		o.Servers = []stack.Server{{Name: "alarms", Section: map[string]any{
			"plugin": alarms.PluginID, "bus": stack.BusResource, "store": stack.StoreResource,
			"records": stack.RecordsResource, "hosts_bus": stack.BusResource, "interval": "100ms", "check_timeout": "1s",
		}}}
	}
	st, err := stack.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		st.Stop(ctx)
	})
	base := "http://" + st.API.Addr()
	p := &platform{t: t, st: st, op: apiclient.New(base, opToken), ro: apiclient.New(base, roToken), tn: apiclient.New(base, tnToken)}
	sub, err := st.Bus.Subscribe(protocol.SubjectAlarmNotify(cfg.Platform), bus.HandlerFunc(func(_ context.Context, m *bus.Msg) {
		var ev apiclient.AlarmEvent
		if err := m.Decode(&ev); err != nil {
			t.Errorf("alarm event: %v", err)
			return
		}
		p.mu.Lock()
		p.evs = append(p.evs, ev)
		p.mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := st.Bus.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	testkit.AwaitWithin(t, 30*time.Second, "the nodes registered", func() bool {
		up := 0
		for _, n := range st.RMS.Nodes() {
			if n.State == protocol.NodeUp {
				up++
			}
		}
		return up == 2
	})
	return p
}

func (p *platform) events(typ, kind, subject string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, ev := range p.evs {
		if ev.Type == typ && ev.Alarm.Kind == kind && ev.Alarm.Subject == subject {
			n++
		}
	}
	return n
}

func (p *platform) find(state, kind, subject string) []apiclient.Alarm {
	p.t.Helper()
	list, err := p.ro.Alarms(context.Background(), state)
	if err != nil {
		p.t.Fatal(err)
	}
	var out []apiclient.Alarm
	for _, a := range list {
		if a.Kind == kind && a.Subject == subject {
			out = append(out, a)
		}
	}
	return out
}

// gauge is the value of convene_alarm_active for a cause (0: none).
func (p *platform) gauge(kind, subject string) float64 {
	p.t.Helper()
	mfs, err := p.st.Metrics.Gather()
	if err != nil {
		p.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "convene_alarm_active" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["subject"] == subject {
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// raisedThenCleared breaks something, sees one alarm raised for it, mends
// it, and sees that alarm cleared: one alarm, one announcement each.
func (p *platform) raisedThenCleared(kind, subject string, breakIt, mendIt func()) {
	p.t.Helper()
	breakIt()
	testkit.AwaitWithin(p.t, 30*time.Second, kind+" "+subject+" raised", func() bool { return len(p.find(apiclient.AlarmStateActive, kind, subject)) == 1 })
	if g := p.gauge(kind, subject); g != 1 {
		p.t.Fatalf("%s %s: gauge %v while active", kind, subject, g)
	}
	// Many checks later it is still the one alarm.
	p.passes(5)()
	if n := p.events(apiclient.AlarmRaised, kind, subject); n != 1 {
		p.t.Fatalf("%s %s raised %d times", kind, subject, n)
	}
	mendIt()
	testkit.AwaitWithin(p.t, 30*time.Second, kind+" "+subject+" cleared", func() bool { return len(p.find(apiclient.AlarmStateActive, kind, subject)) == 0 })
	testkit.AwaitWithin(p.t, 30*time.Second, kind+" "+subject+" clear announced", func() bool { return p.events(apiclient.AlarmCleared, kind, subject) >= 1 })
	p.passes(5)()
	all := p.find(apiclient.AlarmStateAll, kind, subject)
	if len(all) != 1 || all[0].ClearedAt == nil || all[0].ClearedAt.Before(all[0].RaisedAt) {
		p.t.Fatalf("%s %s: history %+v", kind, subject, all)
	}
	if r, c := p.events(apiclient.AlarmRaised, kind, subject), p.events(apiclient.AlarmCleared, kind, subject); r != 1 || c != 1 {
		p.t.Fatalf("%s %s raised %d times, cleared %d times", kind, subject, r, c)
	}
	if g := p.gauge(kind, subject); g != 0 {
		p.t.Fatalf("%s %s: gauge %v once cleared", kind, subject, g)
	}
}

// passes returns a wait for n more checks of the running service.
func (p *platform) passes(n int) func() {
	return func() {
		p.t.Helper()
		svc := p.service()
		from := svc.Passes()
		testkit.AwaitWithin(p.t, 30*time.Second, fmt.Sprintf("%d checks", n), func() bool { return svc.Passes() >= from+uint64(n)+1 })
	}
}

func (p *platform) service() *alarms.Service {
	p.t.Helper()
	if inst, ok := p.st.Host.Instance("alarms"); ok {
		if ps, ok := inst.(*alarms.PluginServer); ok && ps.Service() != nil {
			return ps.Service()
		}
	}
	p.t.Fatal("no alarm service runs")
	return nil
}

// Kill a media node, fail a room, stop a plugin: each raises one alarm
// that clears once the cause goes.
func TestPlatformAlarms(t *testing.T) {
	p := startPlatform(t, "", true)
	ctx := context.Background()
	host := p.st.Host.Name()

	t.Run("node", func(t *testing.T) {
		p.t = t
		p.raisedThenCleared(apiclient.AlarmNodeDown, "sim-1",
			func() { p.st.KillNode(0) },
			func() {
				if err := p.st.AddSimNode(ctx, 1, 100); err != nil {
					t.Fatal(err)
				}
			})
	})
	t.Run("room", func(t *testing.T) {
		p.t = t
		p.raisedThenCleared(apiclient.AlarmRoomFailed, "room-a2",
			func() {
				if _, err := p.op.FailRoom(ctx, "room-a2", "alarm test"); err != nil {
					t.Fatal(err)
				}
			},
			func() {
				if _, err := p.op.RecoverRoom(ctx, "room-a2"); err != nil {
					t.Fatal(err)
				}
			})
	})
	t.Run("plugin", func(t *testing.T) {
		p.t = t
		p.raisedThenCleared(apiclient.AlarmPluginStopped, host+"/convene.breakout",
			func() {
				if _, err := p.op.StopPlugin(ctx, host, "convene.breakout"); err != nil {
					t.Fatal(err)
				}
			},
			func() {
				if _, err := p.op.StartPlugin(ctx, host, "convene.breakout"); err != nil {
					t.Fatal(err)
				}
			})
	})
	t.Run("api", func(t *testing.T) {
		p.t = t
		p.st.FreezeNode(1)
		testkit.AwaitWithin(t, 30*time.Second, "sim-2 alarmed", func() bool { return len(p.find(apiclient.AlarmStateActive, apiclient.AlarmNodeDown, "sim-2")) == 1 })
		a := p.find(apiclient.AlarmStateActive, apiclient.AlarmNodeDown, "sim-2")[0]

		// The answer's shape, exactly.
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.st.API.Addr()+"/v1/alarms?state=active", nil)
		req.Header.Set("Authorization", "Bearer "+roToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string][]map[string]json.RawMessage
		err = json.NewDecoder(resp.Body).Decode(&raw)
		_ = resp.Body.Close()
		if err != nil || len(raw) != 1 || len(raw["alarms"]) == 0 {
			t.Fatalf("body %v, %v", raw, err)
		}
		for _, item := range raw["alarms"] {
			keys := make([]string, 0, len(item))
			for k := range item {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"acked", "cleared_at", "id", "kind", "raised_at", "severity", "subject"}; !slices.Equal(keys, want) {
				t.Fatalf("alarm fields %v, want %v", keys, want)
			}
			if string(item["cleared_at"]) != "null" {
				t.Fatalf("cleared_at of an active alarm: %s", item["cleared_at"])
			}
			var at time.Time
			if err := json.Unmarshal(item["raised_at"], &at); err != nil {
				t.Fatalf("raised_at %s: %v", item["raised_at"], err)
			}
		}

		var ae *apiclient.Error
		if _, err := p.ro.AckAlarm(ctx, a.ID); !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
			t.Fatalf("a readonly token acknowledged: %v", err)
		}
		if _, err := p.tn.Alarms(ctx, apiclient.AlarmStateActive); !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
			t.Fatalf("a tenant token listed alarms: %v", err)
		}
		if _, err := p.op.Alarms(ctx, "sometimes"); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
			t.Fatalf("a bad state: %v", err)
		}
		for range 2 {
			got, err := p.op.AckAlarm(ctx, a.ID)
			if err != nil || !got.Acked || got.ID != a.ID {
				t.Fatalf("ack: %+v, %v", got, err)
			}
		}
		if _, err := p.op.AckAlarm(ctx, "al-none"); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
			t.Fatalf("ack of an unknown alarm: %v", err)
		}
		if n := p.events(apiclient.AlarmAcked, apiclient.AlarmNodeDown, "sim-2"); n != 1 {
			testkit.AwaitWithin(t, 30*time.Second, "ack announced", func() bool { return p.events(apiclient.AlarmAcked, apiclient.AlarmNodeDown, "sim-2") == 1 })
		}
	})
}

// Stop redis-server: the store alarms; start it again: the alarm clears.
func TestStoreAlarm(t *testing.T) {
	r := redistest.Start(t, redistest.Options{})
	p := startPlatform(t, r.URL(), false)
	p.raisedThenCleared(apiclient.AlarmStoreUnreachable, "store", r.Kill, r.Restart)
}
