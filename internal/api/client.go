package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls the REST API. It is safe for concurrent use and keeps
// connections alive: make one and reuse it.
type Client struct {
	base  string
	auth  string
	httpc *http.Client
}

// APIError is an error response of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// NewClient returns a client of the API at baseURL (http://host:port)
// sending token.
func NewClient(baseURL, token string) *Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &Client{
		base:  strings.TrimRight(baseURL, "/"),
		auth:  "Bearer " + token,
		httpc: &http.Client{Transport: tr},
	}
}

// CloseIdleConnections closes the connections the client keeps.
func (c *Client) CloseIdleConnections() { c.httpc.CloseIdleConnections() }

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
	var out conferenceList
	err := c.do(ctx, http.MethodGet, withQuery("/v1/domains/"+url.PathEscape(moid)+"/conferences", q), nil, &out)
	return out.Conferences, err
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
	var out monitorList
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
	var out templateList
	err := c.do(ctx, http.MethodGet, withQuery("/v1/domains/"+url.PathEscape(moid)+"/templates", q), nil, &out)
	return out.Templates, err
}

// Nodes lists the platform's media nodes.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var out nodeList
	err := c.do(ctx, http.MethodGet, "/v1/nodes", nil, &out)
	return out.Nodes, err
}

// Rooms lists the platform's server rooms.
func (c *Client) Rooms(ctx context.Context) ([]Room, error) {
	var out roomList
	err := c.do(ctx, http.MethodGet, "/v1/rooms", nil, &out)
	return out.Rooms, err
}

// Platforms lists the configured platforms.
func (c *Client) Platforms(ctx context.Context) ([]Platform, error) {
	var out platformList
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
	var out eventList
	err := c.do(ctx, http.MethodGet, withQuery("/v1/events", q), nil, &out)
	return out.Events, err
}

// Health reads /healthz with the client's token, so that it says which
// part is down. An API that answers but is unhealthy is not an error: its
// Health says what is down (Status is not "ok").
func (c *Client) Health(ctx context.Context) (Health, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
	if err != nil {
		return Health{}, err
	}
	req.Header.Set("Authorization", c.auth)
	resp, err := c.httpc.Do(req)
	if err != nil {
		return Health{}, err
	}
	defer drain(resp.Body)
	var h Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return Health{}, fmt.Errorf("api: /healthz answered %d with an unreadable body: %w", resp.StatusCode, err)
	}
	return h, nil
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// do sends a request with in (when not nil) as its JSON body and decodes a
// 2xx answer into out (when not nil); any other answer is an *APIError.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("api: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", c.auth)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpc.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return ResponseError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("api: decode the answer to %s %s: %w", method, path, err)
	}
	return nil
}

// ResponseError reads an error response into an *APIError; one that is not
// the API's JSON envelope (a proxy's page) keeps its status as the code,
// HTTP_<status>.
func ResponseError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb ErrorBody
	if err := json.Unmarshal(data, &eb); err == nil && eb.Error.Code != "" {
		return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	msg := strings.TrimSpace(string(data))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &APIError{Status: resp.StatusCode, Code: "HTTP_" + strconv.Itoa(resp.StatusCode), Message: msg}
}

// drain reads what is left of a body so the connection can be reused.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 1<<20))
	_ = body.Close()
}

// FailRoom fails a server room by hand: its conferences move to other
// rooms, and it stays failed until RecoverRoom. It returns every room of
// the platform as the platform monitor now sees them.
func (c *Client) FailRoom(ctx context.Context, moid, reason string) ([]Room, error) {
	var out roomList
	err := c.do(ctx, http.MethodPost, "/v1/rooms/"+url.PathEscape(moid)+"/fail", FailRoomRequest{Reason: reason}, &out)
	return out.Rooms, err
}

// RecoverRoom recovers a server room by hand, however it failed. It
// returns every room of the platform as the platform monitor now sees
// them.
func (c *Client) RecoverRoom(ctx context.Context, moid string) ([]Room, error) {
	var out roomList
	err := c.do(ctx, http.MethodPost, "/v1/rooms/"+url.PathEscape(moid)+"/recover", nil, &out)
	return out.Rooms, err
}

// FailPlatform switches the local platform over by hand: its backups take
// its conferences and its scheduler stands down until RecoverPlatform. It
// returns the platforms as the platform monitor now sees them.
func (c *Client) FailPlatform(ctx context.Context, moid, reason string) ([]Platform, error) {
	var out platformList
	err := c.do(ctx, http.MethodPost, "/v1/platforms/"+url.PathEscape(moid)+"/fail", FailPlatformRequest{Reason: reason}, &out)
	return out.Platforms, err
}

// RecoverPlatform switches the local platform back. It returns the
// platforms as the platform monitor now sees them.
func (c *Client) RecoverPlatform(ctx context.Context, moid string) ([]Platform, error) {
	var out platformList
	err := c.do(ctx, http.MethodPost, "/v1/platforms/"+url.PathEscape(moid)+"/recover", nil, &out)
	return out.Platforms, err
}

// SetDRMode sets the disaster-recovery mode of a master of the local
// platform: automatic, manual-on, manual-off or closed. It returns the
// platforms as the platform monitor now sees them.
func (c *Client) SetDRMode(ctx context.Context, moid, mode string) ([]Platform, error) {
	var out platformList
	err := c.do(ctx, http.MethodPut, "/v1/platforms/"+url.PathEscape(moid)+"/dr", DRModeRequest{Mode: mode}, &out)
	return out.Platforms, err
}
