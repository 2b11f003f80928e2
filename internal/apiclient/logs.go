package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// LogLine is one kept log line: a service's structured line about a call
// or a conference, or a line of a call's own log.
type LogLine struct {
	Time    time.Time         `json:"time"`
	Level   string            `json:"level"` // DEBUG, INFO, WARN, ERROR
	Node    string            `json:"node,omitempty"`
	CallID  string            `json:"call_id,omitempty"`
	E164    string            `json:"e164,omitempty"`
	Message string            `json:"message"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

// LogList is the answer of GET /v1/logs: lines oldest first.
type LogList struct {
	Lines []LogLine `json:"lines"`
}

// LogOptions filter GET /v1/logs. With both E164 and CallID, the lines of
// either.
type LogOptions struct {
	E164   string
	CallID string
	// Level is the lowest level listed: debug, info, warn or error
	// (empty: all).
	Level string
	// Since lists the lines logged at or after it (zero: all kept).
	Since time.Time
	// Limit is at most this many lines, the oldest (0: the API's default,
	// 1,000; at most 10,000).
	Limit int
}

// Query is the query string of the options.
func (o LogOptions) Query() url.Values {
	q := url.Values{}
	if o.E164 != "" {
		q.Set("e164", o.E164)
	}
	if o.CallID != "" {
		q.Set("call_id", o.CallID)
	}
	if o.Level != "" {
		q.Set("level", o.Level)
	}
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return q
}

// Logs lists kept log lines, oldest first.
func (c *Client) Logs(ctx context.Context, opts LogOptions) (LogList, error) {
	var out LogList
	err := c.do(ctx, http.MethodGet, withQuery("/v1/logs", opts.Query()), nil, &out)
	return out, err
}
