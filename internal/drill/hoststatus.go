package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/host"
)

// hostWatch follows the hosts' status as they publish it on the bus
// (host.status.<platform>): a host is ready when its newest status, taken
// after the process started, says it runs with every plugin running and
// every server healthy.
type hostWatch struct {
	bus      *bus.Bus
	platform string
	sub      *bus.Subscription

	mu   sync.Mutex
	last map[string]host.HostStatus // by host name
}

func newHostWatch(busURL, credsFile, platform string) (*hostWatch, error) {
	b, err := bus.Connect(bus.Options{URL: busURL, CredsFile: credsFile, Role: bus.RoleHost, Name: "drill-hosts",
		RetryOnFailedConnect: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("drill: the host watch's bus connection: %w", err)
	}
	w := &hostWatch{bus: b, platform: platform, last: map[string]host.HostStatus{}}
	w.sub, err = b.Subscribe(host.SubjectStatus(platform), bus.HandlerFunc(w.onStatus))
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("drill: the host watch's subscription: %w", err)
	}
	return w, nil
}

func (w *hostWatch) close() {
	_ = w.sub.Unsubscribe()
	w.bus.Close()
}

func (w *hostWatch) onStatus(_ context.Context, m *bus.Msg) {
	var ntf host.StatusNtf
	if err := json.Unmarshal(m.Data, &ntf); err != nil || ntf.Type != host.TypeStatusNtf {
		return
	}
	st := ntf.Status
	w.mu.Lock()
	if cur, ok := w.last[st.Host]; !ok || !cur.At.After(st.At) {
		w.last[st.Host] = st
	}
	w.mu.Unlock()
}

// ask has every host publish its status now.
func (w *hostWatch) ask() {
	_ = w.bus.Publish(host.SubjectQuery(w.platform), host.StatusReq{Type: host.TypeStatusReq})
}

// notReady says why host name is not ready: "" when it is. Its status
// must have been taken after since, and, when started is not zero, by a
// host started after started (a process started then).
func (w *hostWatch) notReady(name string, started, since time.Time) string {
	w.mu.Lock()
	st, ok := w.last[name]
	w.mu.Unlock()
	switch {
	case !ok:
		return "it has published no status"
	case st.At.Before(since):
		return "it has published no status since " + since.Format(time.RFC3339Nano)
	case !started.IsZero() && st.Started.Before(started):
		return "its newest status is of the host that ran before " + started.Format(time.RFC3339Nano)
	case !st.Running:
		return "it says it does not run"
	}
	var why []string
	for _, p := range st.Plugins {
		if p.State != host.StateRunning {
			why = append(why, fmt.Sprintf("plugin %s is %s %s", p.ID, p.State, p.Error))
		}
	}
	for _, list := range [][]host.ServerStatus{st.Infrastructure, st.Servers} {
		for _, s := range list {
			if s.State != host.StateRunning || (s.Health != "" && s.Health != "ok") {
				why = append(why, fmt.Sprintf("%s is %s %s %s", s.Name, s.State, s.Health, s.Error))
			}
		}
	}
	return strings.Join(why, "; ")
}

// waitReady waits until p's host is ready (see notReady), or its process
// ends, or timeout passes.
func (w *hostWatch) waitReady(ctx context.Context, p *proc, started, since time.Time, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	asked := time.Time{}
	for {
		why := w.notReady(p.name, started, since)
		if why == "" {
			return nil
		}
		if err := p.exitedEarly(); err != nil {
			return err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("host %s not ready within %s: %s; the end of its log:\n%s", p.name, timeout, why, tail(p.log, 20))
		}
		if time.Since(asked) > 500*time.Millisecond {
			w.ask()
			asked = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
}
