package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// HostList is the answer to GET /v1/hosts: every host the API knows of,
// sorted by name.
type HostList struct {
	Hosts []HostStatus `json:"hosts"`
}

// HostStatus is what one host runs and how: its plugins' states, its
// infrastructure and servers with their components, its channels.
type HostStatus struct {
	Host     string `json:"host"`
	Platform string `json:"platform"`
	// Running is false once the host stopped.
	Running bool      `json:"running"`
	Started time.Time `json:"started,omitzero"`
	// At is when the status was taken; IntervalMS how often the host
	// sends it.
	At             time.Time       `json:"at"`
	IntervalMS     int64           `json:"interval_ms,omitempty"`
	Plugins        []PluginStatus  `json:"plugins"`
	Infrastructure []ServerStatus  `json:"infrastructure"`
	Servers        []ServerStatus  `json:"servers"`
	Channels       []ChannelStatus `json:"channels"`
}

// PluginStatus is a plugin's state on one host: running, stopped (by an
// operator) or failed (Error says why).
type PluginStatus struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// ServerStatus is a server's (or infrastructure entry's) instance.
type ServerStatus struct {
	Name       string `json:"name"`
	Plugin     string `json:"plugin"`
	State      string `json:"state"`
	Error      string `json:"error,omitempty"`
	Health     string `json:"health,omitempty"`
	Deployment string `json:"deployment,omitempty"`
	// Instance counts the instances made so far: a restarted plugin's
	// server shows a higher one.
	Instance   int               `json:"instance"`
	Components []ComponentStatus `json:"components,omitempty"`
}

// ComponentStatus is a component's instance in one server.
type ComponentStatus struct {
	Name     string `json:"name"`
	Plugin   string `json:"plugin"`
	State    string `json:"state"`
	Error    string `json:"error,omitempty"`
	Health   string `json:"health,omitempty"`
	Instance int    `json:"instance"`
}

// ChannelStatus is a host's end of a message channel.
type ChannelStatus struct {
	Name       string `json:"name"`
	Deployment string `json:"deployment"`
	Subject    string `json:"subject,omitempty"`
	Queue      string `json:"queue,omitempty"`
	Capacity   int    `json:"capacity"`
	Queued     int    `json:"queued"`
	Receivers  int    `json:"receivers"`
	Refused    int    `json:"refused,omitempty"`
}

// Plugin is a plugin's status on this host, and whether the host runs it.
func (h HostStatus) Plugin(id string) (PluginStatus, bool) {
	for _, p := range h.Plugins {
		if p.ID == id {
			return p, true
		}
	}
	return PluginStatus{}, false
}

// Hosts lists the hosts the API knows of: its own, and those answering on
// the platform's bus when the API reaches them.
func (c *Client) Hosts(ctx context.Context) ([]HostStatus, error) {
	var out HostList
	err := c.do(ctx, http.MethodGet, "/v1/hosts", nil, &out)
	return out.Hosts, err
}

// StopPlugin stops a plugin on a host; the answer is the host's status
// after. What the plugin served answers 503 PLUGIN_STOPPED meanwhile.
func (c *Client) StopPlugin(ctx context.Context, host, plugin string) (HostStatus, error) {
	return c.pluginAction(ctx, host, plugin, "stop")
}

// StartPlugin starts a stopped plugin on a host again; the answer is the
// host's status after.
func (c *Client) StartPlugin(ctx context.Context, host, plugin string) (HostStatus, error) {
	return c.pluginAction(ctx, host, plugin, "start")
}

func (c *Client) pluginAction(ctx context.Context, host, plugin, action string) (HostStatus, error) {
	var out HostStatus
	err := c.do(ctx, http.MethodPost, "/v1/hosts/"+url.PathEscape(host)+"/plugins/"+url.PathEscape(plugin)+"/"+action, nil, &out)
	return out, err
}
