package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Management over the bus, for hosts in many processes:
//
//	host.status.<platform>  HOST_STATUS_NTF  each host's status, every
//	                                         status_interval and on each change
//	host.query.<platform>   HOST_STATUS_REQ  every host publishes its status now
//	host.ctl.<host>         HOST_CTL_REQ     request/reply: stop, start or
//	                                         status; HOST_CTL_ACK with the
//	                                         host's status, or HOST_CTL_NACK
//	                                         {errcode, errmsg}
//
// A host answers on the resource host.bus names (default "bus").

// SubjectStatus is where the hosts of a platform publish their status.
func SubjectStatus(platform string) string { return "host.status." + platform }

// SubjectQuery is where anyone asks every host of a platform for it.
func SubjectQuery(platform string) string { return "host.query." + platform }

// SubjectControl is where one host takes control requests.
func SubjectControl(host string) string { return "host.ctl." + host }

// Message types of management.
const (
	TypeStatusNtf   = "HOST_STATUS_NTF"
	TypeStatusReq   = "HOST_STATUS_REQ"
	TypeControlReq  = "HOST_CTL_REQ"
	TypeControlAck  = "HOST_CTL_ACK"
	TypeControlNack = "HOST_CTL_NACK"
)

// Control actions.
const (
	ActionStop   = "stop"
	ActionStart  = "start"
	ActionStatus = "status"
)

// StatusNtf carries one host's status.
type StatusNtf struct {
	Type   string     `json:"type"`
	Status HostStatus `json:"status"`
}

// StatusReq asks every host of a platform to publish its status.
type StatusReq struct {
	Type string `json:"type"`
}

// ControlReq asks one host to stop or start a plugin, or for its status.
type ControlReq struct {
	Type   string `json:"type"`
	Action string `json:"action"`
	Plugin string `json:"plugin,omitempty"`
}

// ControlAck is a control request done: the host's status after it.
type ControlAck struct {
	Type   string     `json:"type"`
	Status HostStatus `json:"status"`
}

// ControlNack is a control request refused.
type ControlNack struct {
	Type    string `json:"type"`
	ErrCode string `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// controlTimeout bounds a plugin's stop or start asked over the bus.
const controlTimeout = 30 * time.Second

// management is a host's side of it.
type management struct {
	t    Transport
	subs []Unsubscriber
	quit chan struct{}
	done chan struct{}
}

func (h *Host) startManagement() error {
	if h.file.Host.Bus == "" || h.file.Host.Bus == NoBus {
		return nil
	}
	t, err := h.transport(string(h.file.Host.Bus))
	if err != nil {
		return fmt.Errorf("host %s: host.bus: %w", h.Name(), err)
	}
	m := &management{t: t, quit: make(chan struct{}), done: make(chan struct{})}
	h.mgmt = m
	ctl, err := t.Subscribe(SubjectControl(h.Name()), "", h.serveControl)
	if err != nil {
		return fmt.Errorf("host %s: management: %w", h.Name(), err)
	}
	m.subs = append(m.subs, ctl)
	query, err := t.Subscribe(SubjectQuery(h.file.Host.Platform), "", func(Delivery) { h.notify() })
	if err != nil {
		return fmt.Errorf("host %s: management: %w", h.Name(), err)
	}
	m.subs = append(m.subs, query)
	go h.publishLoop(m)
	return nil
}

// publishLoop publishes the host's status every interval and on changes.
func (h *Host) publishLoop(m *management) {
	defer close(m.done)
	tick := time.NewTicker(h.file.Host.StatusInterval)
	defer tick.Stop()
	for {
		select {
		case <-m.quit:
			return
		case <-tick.C:
		case <-h.changed:
		}
		h.publishStatus(m.t)
	}
}

func (h *Host) publishStatus(t Transport) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	data, err := json.Marshal(StatusNtf{Type: TypeStatusNtf, Status: h.Status(ctx)})
	if err == nil {
		err = t.Publish(SubjectStatus(h.file.Host.Platform), data)
	}
	if err != nil {
		h.log.Warn("host: status not published", "host", h.Name(), "err", err)
	}
}

// stopManagement ends the subscriptions and the loop, and publishes the
// host's last status (not running).
func (h *Host) stopManagement() {
	m := h.mgmt
	if m == nil {
		return
	}
	h.mgmt = nil
	for _, s := range m.subs {
		_ = s.Unsubscribe()
	}
	close(m.quit)
	<-m.done
	h.publishStatus(m.t)
}

func (h *Host) serveControl(d Delivery) {
	var req ControlReq
	if err := json.Unmarshal(d.Data, &req); err != nil || req.Type != TypeControlReq {
		h.nack(d, CodeBadRequest, "not a HOST_CTL_REQ: send {\"type\":\"HOST_CTL_REQ\",\"action\":\"stop|start|status\",\"plugin\":\"<ID>\"}")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), controlTimeout)
	defer cancel()
	var err error
	switch req.Action {
	case ActionStop:
		err = h.StopPlugin(ctx, req.Plugin)
	case ActionStart:
		err = h.StartPlugin(ctx, req.Plugin)
	case ActionStatus:
	default:
		h.nack(d, CodeBadRequest, fmt.Sprintf("unknown action %q: use stop, start or status", req.Action))
		return
	}
	if err != nil {
		h.nack(d, codeOf(err), redact(err.Error()))
		return
	}
	data, _ := json.Marshal(ControlAck{Type: TypeControlAck, Status: h.Status(ctx)})
	_ = d.Respond(data)
}

func (h *Host) nack(d Delivery, code, msg string) {
	data, _ := json.Marshal(ControlNack{Type: TypeControlNack, ErrCode: code, ErrMsg: msg})
	_ = d.Respond(data)
}

// codeOf is the stable code of a host error.
func codeOf(err error) string {
	switch {
	case errors.Is(err, ErrUnknownPlugin):
		return CodeUnknownPlugin
	case errors.Is(err, ErrInfrastructure):
		return CodeBadRequest
	case errors.Is(err, ErrNotRunning):
		return CodeHostNotRunning
	}
	return CodePluginFailed
}

// ControlError is a host's refusal of a control request.
type ControlError struct {
	Code    string
	Message string
}

func (e *ControlError) Error() string { return e.Code + ": " + e.Message }

// Is matches the host's sentinel errors by code.
func (e *ControlError) Is(target error) bool {
	switch target {
	case ErrUnknownPlugin:
		return e.Code == CodeUnknownPlugin
	case ErrPluginFailed:
		return e.Code == CodePluginFailed
	}
	return false
}

// Client asks hosts over the bus: the API and the CLI use it.
type Client struct {
	t        Transport
	platform string
}

// NewClient is a client for the hosts of platform.
func NewClient(t Transport, platform string) *Client { return &Client{t: t, platform: platform} }

// StopPlugin stops a plugin on a host; it returns the host's status after.
func (c *Client) StopPlugin(ctx context.Context, host, plugin string) (HostStatus, error) {
	return c.control(ctx, host, ActionStop, plugin)
}

// StartPlugin starts a plugin on a host; it returns the host's status after.
func (c *Client) StartPlugin(ctx context.Context, host, plugin string) (HostStatus, error) {
	return c.control(ctx, host, ActionStart, plugin)
}

// Status asks one host for its status.
func (c *Client) Status(ctx context.Context, host string) (HostStatus, error) {
	return c.control(ctx, host, ActionStatus, "")
}

func (c *Client) control(ctx context.Context, host, action, plugin string) (HostStatus, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, controlTimeout+5*time.Second)
		defer cancel()
	}
	data, _ := json.Marshal(ControlReq{Type: TypeControlReq, Action: action, Plugin: plugin})
	reply, err := c.t.Request(ctx, SubjectControl(host), data)
	if errors.Is(err, ErrNoResponders) {
		return HostStatus{}, fmt.Errorf("host %s does not answer on %s: check that it runs, on this bus, with host.bus set: %w", host, SubjectControl(host), err)
	}
	if err != nil {
		return HostStatus{}, fmt.Errorf("host %s: %s: %w", host, action, err)
	}
	if replyType(reply) == TypeControlNack {
		var n ControlNack
		_ = json.Unmarshal(reply, &n)
		return HostStatus{}, &ControlError{Code: n.ErrCode, Message: n.ErrMsg}
	}
	var ack ControlAck
	if err := json.Unmarshal(reply, &ack); err != nil || ack.Type != TypeControlAck {
		return HostStatus{}, fmt.Errorf("host %s: %s: unexpected reply %q", host, action, replyType(reply))
	}
	return ack.Status, nil
}

// Hosts asks every host of the platform for its status and gathers the
// answers until ctx ends (a second when ctx has no deadline: plenty on
// one network); it returns the running hosts, sorted by name.
func (c *Client) Hosts(ctx context.Context) ([]HostStatus, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Second)
		defer cancel()
	}
	col, err := NewCollector(c.t, c.platform)
	if err != nil {
		return nil, err
	}
	defer col.Close()
	<-ctx.Done()
	return col.Hosts(), nil
}

// Collector keeps the latest status of every host of a platform, as the
// API does for GET /v1/hosts; a host silent for three of its intervals,
// or that said it stopped, is forgotten. The last word of a host that
// said it stopped is kept apart (Stopped) until it runs again, so that a
// watcher can tell a planned stop from a host that went silent.
type Collector struct {
	sub Unsubscriber
	now func() time.Time

	mu      sync.Mutex
	hosts   map[string]seen
	stopped map[string]HostStatus
}

type seen struct {
	status HostStatus
	at     time.Time
}

// NewCollector subscribes to the platform's statuses and asks every host
// for its own at once.
func NewCollector(t Transport, platform string) (*Collector, error) {
	c := &Collector{now: time.Now, hosts: map[string]seen{}, stopped: map[string]HostStatus{}}
	sub, err := t.Subscribe(SubjectStatus(platform), "", c.take)
	if err != nil {
		return nil, fmt.Errorf("host: collect statuses: %w", err)
	}
	c.sub = sub
	data, _ := json.Marshal(StatusReq{Type: TypeStatusReq})
	if err := t.Publish(SubjectQuery(platform), data); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("host: ask for statuses: %w", err)
	}
	return c, nil
}

func (c *Collector) take(d Delivery) {
	var n StatusNtf
	if err := json.Unmarshal(d.Data, &n); err != nil || n.Type != TypeStatusNtf || n.Status.Host == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.hosts[n.Status.Host]; ok && old.status.At.After(n.Status.At) {
		return // an older status overtaken by a newer one
	}
	if last, ok := c.stopped[n.Status.Host]; ok && last.At.After(n.Status.At) {
		return // a status from before the host said it stopped
	}
	if !n.Status.Running {
		delete(c.hosts, n.Status.Host)
		c.stopped[n.Status.Host] = n.Status
		return
	}
	delete(c.stopped, n.Status.Host)
	c.hosts[n.Status.Host] = seen{status: n.Status, at: c.now()}
}

// Stopped are the last statuses of the hosts that said they stopped and
// have not run since, sorted by host name.
func (c *Collector) Stopped() []HostStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]HostStatus, 0, len(c.stopped))
	for _, s := range c.stopped {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

// Hosts are the latest statuses, sorted by host name.
func (c *Collector) Hosts() []HostStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	out := make([]HostStatus, 0, len(c.hosts))
	for name, s := range c.hosts {
		ttl := 3 * time.Duration(s.status.IntervalMS) * time.Millisecond
		if ttl > 0 && now.Sub(s.at) > ttl {
			delete(c.hosts, name)
			continue
		}
		out = append(out, s.status)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

// Close stops collecting.
func (c *Collector) Close() error { return c.sub.Unsubscribe() }
