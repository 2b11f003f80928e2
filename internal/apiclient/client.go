package apiclient

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

	"github.com/convene/convene/internal/codes"
)

// Client calls the REST API. It is safe for concurrent use and keeps
// connections alive: make one and reuse it.
type Client struct {
	base  string
	auth  string
	httpc *http.Client
}

// Error is an error answer of the API: its HTTP status, and the stable
// code (internal/codes) and sentence of its envelope. An answer that is
// not the API's envelope (a proxy's page) has the code HTTP_<status>.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns a client of the API at baseURL (http://host:port) sending
// token.
func New(baseURL, token string) *Client {
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
		return Health{}, fmt.Errorf("apiclient: /healthz answered %d with an unreadable body: %w", resp.StatusCode, err)
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
// 2xx answer into out (when not nil); any other answer is an *Error.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("apiclient: encode %s %s: %w", method, path, err)
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
		return fmt.Errorf("apiclient: decode the answer to %s %s: %w", method, path, err)
	}
	return nil
}

// ResponseError reads an error response into an *Error; one that is not
// the API's JSON envelope (a proxy's page) keeps its status as the code,
// HTTP_<status>.
func ResponseError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb codes.Envelope
	if err := json.Unmarshal(data, &eb); err == nil && eb.Error.Code != "" {
		return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	msg := strings.TrimSpace(string(data))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &Error{Status: resp.StatusCode, Code: "HTTP_" + strconv.Itoa(resp.StatusCode), Message: msg}
}

// drain reads what is left of a body so the connection can be reused.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 1<<20))
	_ = body.Close()
}
