package apiclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// CDRQuery selects call records, for GET /v1/cdrs, /v1/cdrs/stats and
// /v1/cdrs/export: the zero value is today's calls (in the platform's
// time zone), every type, caller, called and connected state.
type CDRQuery struct {
	Start, End time.Time // records that started in [Start, End); zero: the API's default
	Type       string    // "voice", "video", or "" for both
	Caller     string    // a number, or a prefix ending in "*"
	Called     string    // a number, or a prefix ending in "*"
	Connected  *bool     // nil for both
	Page       string    // the previous page's Next
	PageSize   int       // 0 is the API's default (100); at most 1,000
}

// Values are the query's URL parameters.
func (q CDRQuery) Values() url.Values {
	v := url.Values{}
	set := func(name, val string) {
		if val != "" {
			v.Set(name, val)
		}
	}
	if !q.Start.IsZero() {
		v.Set("start", q.Start.Format(time.RFC3339Nano))
	}
	if !q.End.IsZero() {
		v.Set("end", q.End.Format(time.RFC3339Nano))
	}
	set("type", q.Type)
	set("caller", q.Caller)
	set("called", q.Called)
	if q.Connected != nil {
		v.Set("connected", strconv.FormatBool(*q.Connected))
	}
	set("page", q.Page)
	if q.PageSize > 0 {
		v.Set("page_size", strconv.Itoa(q.PageSize))
	}
	return v
}

// CDR is a call as the API shows it: a call record, or a live call (end
// null, duration 0).
type CDR struct {
	ID              string     `json:"id"`
	CallID          string     `json:"call_id"`
	Caller          string     `json:"caller"`
	Called          string     `json:"called"`
	Type            string     `json:"type"`
	Connected       bool       `json:"connected"`
	Start           time.Time  `json:"start"`
	Answer          *time.Time `json:"answer"`
	End             *time.Time `json:"end"`
	DurationSeconds int64      `json:"duration_seconds"`
	Status          int        `json:"status"`
	Node            string     `json:"node"`
	Platform        string     `json:"platform"`
	E164            string     `json:"e164"`
}

// CDRPage is the answer of GET /v1/cdrs (and of the call records
// interface's GET /cdrs); Next is the page parameter of the following
// page, "" after the last.
type CDRPage struct {
	CDRs []CDR  `json:"cdrs"`
	Next string `json:"next"`
}

// CDRCounts are a number of calls and their total duration.
type CDRCounts struct {
	Count           int64 `json:"count"`
	DurationSeconds int64 `json:"duration_seconds"`
}

// CDRBucket counts the calls that started in one hour or day (the
// totals: in the whole range), in all and per type.
type CDRBucket struct {
	Start           time.Time `json:"start"`
	Count           int64     `json:"count"`
	DurationSeconds int64     `json:"duration_seconds"`
	Voice           CDRCounts `json:"voice"`
	Video           CDRCounts `json:"video"`
}

// CDRStats is the answer of GET /v1/cdrs/stats: Bucket is "hour" (a
// range of one day or less) or "day"; the buckets add up to the totals.
// Start and End are the range counted (whole hours of TimeZone); Source
// says whether the roll-ups or the records were read.
type CDRStats struct {
	Bucket   string      `json:"bucket"`
	Start    time.Time   `json:"start"`
	End      time.Time   `json:"end"`
	TimeZone string      `json:"time_zone"`
	Source   string      `json:"source"`
	Totals   CDRBucket   `json:"totals"`
	Buckets  []CDRBucket `json:"buckets"`
}

// LiveCalls is the answer of GET /v1/calls/live: the calls in progress,
// newest first, a page of them.
type LiveCalls struct {
	Calls []CDR  `json:"calls"`
	Next  string `json:"next"`
}

// CallLogLine is a line of a call's log.
type CallLogLine struct {
	Time      time.Time `json:"time"`
	Level     string    `json:"level"`
	Node      string    `json:"node"`
	Direction string    `json:"direction,omitempty"`
	Peer      string    `json:"peer,omitempty"`
	CallID    string    `json:"call_id,omitempty"`
	E164      string    `json:"e164,omitempty"`
	Message   string    `json:"message"`
}

// CallLog is the answer of GET /v1/cdrs/{id}/log.
type CallLog struct {
	ID     string        `json:"id"`
	CallID string        `json:"call_id"`
	Lines  []CallLogLine `json:"lines"`
}

// CDRs reads a page of the call records q selects, newest first.
func (c *Client) CDRs(ctx context.Context, q CDRQuery) (CDRPage, error) {
	var out CDRPage
	err := c.do(ctx, http.MethodGet, withQuery("/v1/cdrs", q.Values()), nil, &out)
	return out, err
}

// CDR reads one call record.
func (c *Client) CDR(ctx context.Context, id string) (CDR, error) {
	var out CDR
	err := c.do(ctx, http.MethodGet, "/v1/cdrs/"+url.PathEscape(id), nil, &out)
	return out, err
}

// CallLog reads the log lines of a call, ended or live.
func (c *Client) CallLog(ctx context.Context, id string) (CallLog, error) {
	var out CallLog
	err := c.do(ctx, http.MethodGet, "/v1/cdrs/"+url.PathEscape(id)+"/log", nil, &out)
	return out, err
}

// CDRStats reads the statistics of the calls q selects (its page aside).
func (c *Client) CDRStats(ctx context.Context, q CDRQuery) (CDRStats, error) {
	q.Page, q.PageSize = "", 0
	var out CDRStats
	err := c.do(ctx, http.MethodGet, withQuery("/v1/cdrs/stats", q.Values()), nil, &out)
	return out, err
}

// LiveCalls reads a page of the calls in progress; page is the previous
// page's Next ("" from the newest), size 0 the API's default.
func (c *Client) LiveCalls(ctx context.Context, page string, size int) (LiveCalls, error) {
	q := url.Values{}
	if page != "" {
		q.Set("page", page)
	}
	if size > 0 {
		q.Set("page_size", strconv.Itoa(size))
	}
	var out LiveCalls
	err := c.do(ctx, http.MethodGet, withQuery("/v1/calls/live", q), nil, &out)
	return out, err
}

// ExportCDRs copies the CSV export of the call records q selects (from
// its page on, every page; its page size aside) to w as it arrives, and
// returns the bytes copied. An export the server cut short is an error
// (what was copied is incomplete).
func (c *Client) ExportCDRs(ctx context.Context, q CDRQuery, w io.Writer) (int64, error) {
	q.PageSize = 0
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+withQuery("/v1/cdrs/export", q.Values()), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Accept", "text/csv")
	resp, err := c.httpc.Do(req)
	if err != nil {
		return 0, err
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, ResponseError(resp)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("apiclient: the export was cut after %d bytes: %w", n, err)
	}
	return n, nil
}

// CDRGenerateRequest is the body of POST /v1/cdrs/generate: Count calls
// spread over the Days days up to Now, written as the SIP edge writes
// calls. The same request (Now and Seed included) writes the same calls,
// so sending it again adds nothing.
type CDRGenerateRequest struct {
	Count int       `json:"count"`
	Days  int       `json:"days"`
	Seed  uint64    `json:"seed"`
	Now   time.Time `json:"now"`
	// Platform and Nodes the calls are recorded for; default the
	// platform's moid and sip-a, sip-b.
	Platform string   `json:"platform,omitempty"`
	Nodes    []string `json:"nodes,omitempty"`
}

// CDRGenerated is the answer of POST /v1/cdrs/generate.
type CDRGenerated struct {
	Calls      int   `json:"calls"`
	Voice      int   `json:"voice"`
	Video      int   `json:"video"`
	Connected  int   `json:"connected"`
	Conference int   `json:"conference"`
	ElapsedMS  int64 `json:"elapsed_ms"`
}

// GenerateCDRs has the platform write realistic calls through its call
// records (for demos, tests and benchmarks).
func (c *Client) GenerateCDRs(ctx context.Context, req CDRGenerateRequest) (CDRGenerated, error) {
	var out CDRGenerated
	err := c.do(ctx, http.MethodPost, "/v1/cdrs/generate", req, &out)
	return out, err
}
