package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// CreateConference books a conference now.
func (c *Client) CreateConference(ctx context.Context, req CreateConferenceRequest) (Conference, error) {
	var out Conference
	err := c.do(ctx, http.MethodPost, "/v1/conferences", req, &out)
	return out, err
}

// Conference reads a conference.
func (c *Client) Conference(ctx context.Context, e164 string) (Conference, error) {
	var out Conference
	err := c.do(ctx, http.MethodGet, "/v1/conferences/"+url.PathEscape(e164), nil, &out)
	return out, err
}

// EndConference ends a conference.
func (c *Client) EndConference(ctx context.Context, e164 string) error {
	return c.do(ctx, http.MethodDelete, "/v1/conferences/"+url.PathEscape(e164), nil, nil)
}

// DelayConference makes a conference longer by minutes.
func (c *Client) DelayConference(ctx context.Context, e164 string, minutes int) (Conference, error) {
	var out Conference
	err := c.do(ctx, http.MethodPost, "/v1/conferences/"+url.PathEscape(e164)+"/delay", DelayRequest{Minutes: minutes}, &out)
	return out, err
}

// UpdateConference renames a conference, changes its password, or both.
func (c *Client) UpdateConference(ctx context.Context, e164 string, req UpdateConferenceRequest) (Conference, error) {
	var out Conference
	err := c.do(ctx, http.MethodPatch, "/v1/conferences/"+url.PathEscape(e164), req, &out)
	return out, err
}

// DomainConferences lists a domain's conferences, by number.
func (c *Client) DomainConferences(ctx context.Context, moid string, opts ListOptions) ([]Conference, error) {
	var out ConferenceList
	err := c.do(ctx, http.MethodGet, withQuery("/v1/domains/"+url.PathEscape(moid)+"/conferences", opts.values()), nil, &out)
	return out.Conferences, err
}

// values are the filters as query parameters.
func (opts ListOptions) values() url.Values {
	q := url.Values{}
	if opts.PublicOnly {
		q.Set("public_only", "true")
	}
	if opts.Terminal != "" {
		q.Set("terminal", opts.Terminal)
	}
	if opts.State != "" {
		q.Set("state", opts.State)
	}
	return q
}

// License reads a domain's licence.
func (c *Client) License(ctx context.Context, moid string) (License, error) {
	var out License
	err := c.do(ctx, http.MethodGet, "/v1/domains/"+url.PathEscape(moid)+"/license", nil, &out)
	return out, err
}

// SetLicense sets the limits of some classes of a domain's licence.
func (c *Client) SetLicense(ctx context.Context, moid string, req SetLicenseRequest) (License, error) {
	var out License
	err := c.do(ctx, http.MethodPut, "/v1/domains/"+url.PathEscape(moid)+"/license", req, &out)
	return out, err
}

// StartMonitor starts a monitoring session of a conference.
func (c *Client) StartMonitor(ctx context.Context, e164 string, req MonitorRequest) (Monitor, error) {
	var out Monitor
	err := c.do(ctx, http.MethodPost, "/v1/conferences/"+url.PathEscape(e164)+"/monitors", req, &out)
	return out, err
}

// Monitors lists a conference's monitoring sessions.
func (c *Client) Monitors(ctx context.Context, e164 string) ([]Monitor, error) {
	var out MonitorList
	err := c.do(ctx, http.MethodGet, "/v1/conferences/"+url.PathEscape(e164)+"/monitors", nil, &out)
	return out.Monitors, err
}

// KeepMonitorAlive renews the session streaming to addr (ip:port).
func (c *Client) KeepMonitorAlive(ctx context.Context, e164, addr string) error {
	return c.do(ctx, http.MethodPost, "/v1/conferences/"+url.PathEscape(e164)+"/monitors/"+url.PathEscape(addr)+"/keepalive", nil, nil)
}

// StopMonitor ends the session streaming to addr (ip:port).
func (c *Client) StopMonitor(ctx context.Context, e164, addr string) error {
	return c.do(ctx, http.MethodDelete, "/v1/conferences/"+url.PathEscape(e164)+"/monitors/"+url.PathEscape(addr), nil, nil)
}

// CreateTemplate creates a template.
func (c *Client) CreateTemplate(ctx context.Context, req TemplateRequest) (Template, error) {
	var out Template
	err := c.do(ctx, http.MethodPost, "/v1/templates", req, &out)
	return out, err
}

// Template reads a template.
func (c *Client) Template(ctx context.Context, e164 string) (Template, error) {
	var out Template
	err := c.do(ctx, http.MethodGet, "/v1/templates/"+url.PathEscape(e164), nil, &out)
	return out, err
}

// UpdateTemplate replaces a template.
func (c *Client) UpdateTemplate(ctx context.Context, e164 string, req TemplateRequest) (Template, error) {
	var out Template
	err := c.do(ctx, http.MethodPut, "/v1/templates/"+url.PathEscape(e164), req, &out)
	return out, err
}

// DeleteTemplate removes a template.
func (c *Client) DeleteTemplate(ctx context.Context, e164 string) error {
	return c.do(ctx, http.MethodDelete, "/v1/templates/"+url.PathEscape(e164), nil, nil)
}

// DomainTemplates lists a domain's templates, by number.
func (c *Client) DomainTemplates(ctx context.Context, moid string, publicOnly bool) ([]Template, error) {
	q := url.Values{}
	if publicOnly {
		q.Set("public_only", "true")
	}
	var out TemplateList
	err := c.do(ctx, http.MethodGet, withQuery("/v1/domains/"+url.PathEscape(moid)+"/templates", q), nil, &out)
	return out.Templates, err
}

// Nodes lists the platform's media nodes.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var out NodeList
	err := c.do(ctx, http.MethodGet, "/v1/nodes", nil, &out)
	return out.Nodes, err
}

// Rooms lists the platform's server rooms.
func (c *Client) Rooms(ctx context.Context) ([]Room, error) {
	var out RoomList
	err := c.do(ctx, http.MethodGet, "/v1/rooms", nil, &out)
	return out.Rooms, err
}

// Platforms lists the configured platforms.
func (c *Client) Platforms(ctx context.Context) ([]Platform, error) {
	var out PlatformList
	err := c.do(ctx, http.MethodGet, "/v1/platforms", nil, &out)
	return out.Platforms, err
}

// Registry says where a number lives.
func (c *Client) Registry(ctx context.Context, e164 string) (RegistryEntry, error) {
	var out RegistryEntry
	err := c.do(ctx, http.MethodGet, "/v1/registry/"+url.PathEscape(e164), nil, &out)
	return out, err
}

// Events lists recent notifications of the scheduler, newest last.
func (c *Client) Events(ctx context.Context, opts EventOptions) ([]Event, error) {
	q := url.Values{}
	if opts.E164 != "" {
		q.Set("e164", opts.E164)
	}
	if opts.Limit != 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var out EventList
	err := c.do(ctx, http.MethodGet, withQuery("/v1/events", q), nil, &out)
	return out.Events, err
}

// FailRoom fails a server room by hand: its conferences move to other
// rooms, and it stays failed until RecoverRoom. It returns every room of
// the platform as the platform monitor now sees them.
func (c *Client) FailRoom(ctx context.Context, moid, reason string) ([]Room, error) {
	var out RoomList
	err := c.do(ctx, http.MethodPost, "/v1/rooms/"+url.PathEscape(moid)+"/fail", FailRoomRequest{Reason: reason}, &out)
	return out.Rooms, err
}

// RecoverRoom recovers a server room by hand, however it failed. It
// returns every room of the platform as the platform monitor now sees
// them.
func (c *Client) RecoverRoom(ctx context.Context, moid string) ([]Room, error) {
	var out RoomList
	err := c.do(ctx, http.MethodPost, "/v1/rooms/"+url.PathEscape(moid)+"/recover", nil, &out)
	return out.Rooms, err
}

// FailPlatform switches the local platform over by hand: its backups take
// its conferences and its scheduler stands down until RecoverPlatform. It
// returns the platforms as the platform monitor now sees them.
func (c *Client) FailPlatform(ctx context.Context, moid, reason string) ([]Platform, error) {
	var out PlatformList
	err := c.do(ctx, http.MethodPost, "/v1/platforms/"+url.PathEscape(moid)+"/fail", FailPlatformRequest{Reason: reason}, &out)
	return out.Platforms, err
}

// RecoverPlatform switches the local platform back. It returns the
// platforms as the platform monitor now sees them.
func (c *Client) RecoverPlatform(ctx context.Context, moid string) ([]Platform, error) {
	var out PlatformList
	err := c.do(ctx, http.MethodPost, "/v1/platforms/"+url.PathEscape(moid)+"/recover", nil, &out)
	return out.Platforms, err
}

// SetDRMode sets the disaster-recovery mode of a master of the local
// platform: automatic, manual-on, manual-off or closed. It returns the
// platforms as the platform monitor now sees them.
func (c *Client) SetDRMode(ctx context.Context, moid, mode string) ([]Platform, error) {
	var out PlatformList
	err := c.do(ctx, http.MethodPut, "/v1/platforms/"+url.PathEscape(moid)+"/dr", DRModeRequest{Mode: mode}, &out)
	return out.Platforms, err
}

// PlatformConferences lists a platform's conferences
// (GET /v1/platforms/{moid}/conferences); state "" means every state.
func (c *Client) PlatformConferences(ctx context.Context, moid, state string) ([]Conference, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	var out ConferenceList
	err := c.do(ctx, http.MethodGet, withQuery("/v1/platforms/"+url.PathEscape(moid)+"/conferences", q), nil, &out)
	return out.Conferences, err
}
