package host

import (
	"context"
	"regexp"
	"slices"
	"time"
)

// HostStatus is what one host runs and how it is: what GET /v1/hosts
// lists, one per host.
type HostStatus struct {
	Host     string `json:"host"`
	Platform string `json:"platform"`
	// Running is false once the host stopped (its last word).
	Running bool      `json:"running"`
	Started time.Time `json:"started,omitzero"`
	// At is when the status was taken; IntervalMS how often the host
	// sends it (a collector forgets a host silent for three intervals).
	At             time.Time       `json:"at"`
	IntervalMS     int64           `json:"interval_ms,omitempty"`
	Plugins        []PluginStatus  `json:"plugins"`
	Infrastructure []ServerStatus  `json:"infrastructure"`
	Servers        []ServerStatus  `json:"servers"`
	Channels       []ChannelStatus `json:"channels"`
}

// PluginStatus is a plugin's state on one host: running, stopped (by an
// operator) or failed (it could not start; Error says why).
type PluginStatus struct {
	ID    string `json:"id"`
	State State  `json:"state"`
	Error string `json:"error,omitempty"`
}

// ServerStatus is a server's (or infrastructure entry's) instance.
type ServerStatus struct {
	Name       string         `json:"name"`
	Plugin     string         `json:"plugin"`
	State      State          `json:"state"`
	Error      string         `json:"error,omitempty"`
	Health     string         `json:"health,omitempty"`
	Deployment DeploymentType `json:"deployment,omitempty"`
	// Instance counts the instances made so far: a restarted plugin's
	// server shows a higher one.
	Instance   int               `json:"instance"`
	Components []ComponentStatus `json:"components,omitempty"`
}

// ComponentStatus is a component's instance in one server.
type ComponentStatus struct {
	Name     string `json:"name"`
	Plugin   string `json:"plugin"`
	State    State  `json:"state"`
	Error    string `json:"error,omitempty"`
	Health   string `json:"health,omitempty"`
	Instance int    `json:"instance"`
}

// ChannelStatus is the host's end of a channel.
type ChannelStatus struct {
	Name       string         `json:"name"`
	Deployment DeploymentType `json:"deployment"`
	Subject    string         `json:"subject,omitempty"`
	Queue      string         `json:"queue,omitempty"`
	Capacity   int            `json:"capacity"`
	// Queued messages wait in this host; Receivers are the endpoints
	// taking them; Refused counts messages refused for a full queue.
	Queued    int `json:"queued"`
	Receivers int `json:"receivers"`
	Refused   int `json:"refused,omitempty"`
}

// healthOK is the health of a running instance with nothing to report.
const healthOK = "ok"

// Status says what the host runs and how: every instance's state, error
// and health (asked of the running instances that can tell, within ctx).
func (h *Host) Status(ctx context.Context) HostStatus {
	type probe struct {
		hc  HealthChecker
		set func(string)
	}
	var probes []probe
	h.mu.RLock()
	st := HostStatus{Host: h.Name(), Platform: h.file.Host.Platform, Running: h.running, Started: h.started,
		At: time.Now(), IntervalMS: h.file.Host.StatusInterval.Milliseconds()}
	// health is "ok" for a running instance; one that can tell is asked
	// once the lock is released, and set writes its answer.
	health := func(s *slot, set func(string)) string {
		if s.state != StateRunning {
			return ""
		}
		if hc, ok := s.inst.(HealthChecker); ok {
			probes = append(probes, probe{hc, set})
		}
		return healthOK
	}
	server := func(list *[]ServerStatus, s *slot) {
		i := len(*list)
		*list = append(*list, ServerStatus{Name: s.name, Plugin: s.plugin, State: s.state, Error: errText(s.err),
			Deployment: s.deployment, Instance: s.made})
		(*list)[i].Health = health(s, func(v string) { (*list)[i].Health = v })
		for j, c := range s.comps {
			(*list)[i].Components = append((*list)[i].Components, ComponentStatus{Name: c.name, Plugin: c.plugin,
				State: c.state, Error: errText(c.err), Instance: c.made})
			(*list)[i].Components[j].Health = health(c, func(v string) { (*list)[i].Components[j].Health = v })
		}
	}
	for _, s := range h.infra {
		server(&st.Infrastructure, s)
	}
	for _, s := range h.servers {
		server(&st.Servers, s)
	}
	for _, s := range h.infra {
		if !slices.ContainsFunc(st.Plugins, func(p PluginStatus) bool { return p.ID == s.plugin }) {
			ps := PluginStatus{ID: s.plugin, State: StateStopped}
			if h.running {
				ps.State = StateRunning
			}
			st.Plugins = append(st.Plugins, ps)
		}
	}
	for _, id := range h.pluginsUsed() {
		ps := PluginStatus{ID: id, State: StateRunning}
		switch {
		case h.failed[id] != nil:
			ps.State, ps.Error = StateFailed, errText(h.failed[id])
		case h.stopped[id], !h.running:
			ps.State = StateStopped
		}
		st.Plugins = append(st.Plugins, ps)
	}
	for _, c := range h.file.Channels {
		if hb, ok := h.channels[c.Name]; ok {
			st.Channels = append(st.Channels, hb.status())
			continue
		}
		st.Channels = append(st.Channels, ChannelStatus{Name: c.Name, Deployment: c.Kind, Subject: c.Subject, Queue: c.Queue, Capacity: c.Capacity})
	}
	h.mu.RUnlock()
	for _, p := range probes {
		if err := p.hc.Health(ctx); err != nil {
			p.set("unhealthy: " + redact(err.Error()))
		}
	}
	return st
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return redact(err.Error())
}

// A URL's password never leaves the host in a status.
var passwordInURL = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]+@`)

func redact(s string) string { return passwordInURL.ReplaceAllString(s, "${1}xxxxx@") }
