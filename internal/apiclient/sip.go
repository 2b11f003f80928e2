package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SIPSubscriberRequest is the body of POST /v1/sip/subscribers: a new
// subscriber of the SIP edge, or new credentials for one (which enable it
// again). The password is turned into digest credentials and never kept.
type SIPSubscriberRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// SIPSubscriber is a subscriber as the API shows it, never with its
// credentials.
type SIPSubscriber struct {
	User      string    `json:"user"`
	Realm     string    `json:"realm"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Version   int64     `json:"version"`
}

// SIPSubscriberPage is the answer of GET /v1/sip/subscribers; Next is the
// page parameter of the following page, "" after the last.
type SIPSubscriberPage struct {
	Subscribers []SIPSubscriber `json:"subscribers"`
	Next        string          `json:"next"`
}

// PutSIPSubscriber adds a SIP subscriber, or gives one a new password
// (enabling it again). Sent again, it changes nothing.
func (c *Client) PutSIPSubscriber(ctx context.Context, req SIPSubscriberRequest) (SIPSubscriber, error) {
	var out SIPSubscriber
	err := c.do(ctx, http.MethodPost, "/v1/sip/subscribers", req, &out)
	return out, err
}

// SIPSubscribers reads a page of the SIP subscribers, by name after page
// ("" from the first); size 0 is the API's default.
func (c *Client) SIPSubscribers(ctx context.Context, page string, size int) (SIPSubscriberPage, error) {
	q := url.Values{}
	if page != "" {
		q.Set("page", page)
	}
	if size > 0 {
		q.Set("page_size", strconv.Itoa(size))
	}
	var out SIPSubscriberPage
	err := c.do(ctx, http.MethodGet, withQuery("/v1/sip/subscribers", q), nil, &out)
	return out, err
}

// DisableSIPSubscriber disables a SIP subscriber: it can no longer
// register or call.
func (c *Client) DisableSIPSubscriber(ctx context.Context, user string) (SIPSubscriber, error) {
	var out SIPSubscriber
	err := c.do(ctx, http.MethodDelete, "/v1/sip/subscribers/"+url.PathEscape(user), nil, &out)
	return out, err
}
