package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// MaxConferencePageSize is the largest page_size the conference lists
// take.
const MaxConferencePageSize = 1000

// ConferencePage is one page of a conference list, ordered by number:
// Next is the After of the page that follows, "" on the last page.
// Counts are how many conferences of the whole list are in each state
// (creating, running, pending-restore), whatever the page's filters: a
// platform's from the store's indexes, a domain's from its list.
type ConferencePage struct {
	Conferences []Conference   `json:"conferences"`
	Next        string         `json:"next"`
	Counts      map[string]int `json:"counts,omitempty"`
}

// PageOptions ask for one page of a conference list.
type PageOptions struct {
	// Size is the most conferences on the page: 1 to
	// MaxConferencePageSize.
	Size int
	// After is the previous page's Next ("" for the first page).
	After string
}

func (o PageOptions) set(q url.Values) {
	q.Set("page_size", strconv.Itoa(o.Size))
	if o.After != "" {
		q.Set("after", o.After)
	}
}

// PlatformConferencePage reads one page of a platform's conferences
// (GET /v1/platforms/{moid}/conferences?page_size=&after=); state ""
// means every state.
func (c *Client) PlatformConferencePage(ctx context.Context, moid, state string, page PageOptions) (ConferencePage, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	page.set(q)
	var out ConferencePage
	err := c.do(ctx, http.MethodGet, withQuery("/v1/platforms/"+url.PathEscape(moid)+"/conferences", q), nil, &out)
	return out, err
}

// DomainConferencePage reads one page of a domain's conferences
// (GET /v1/domains/{moid}/conferences?page_size=&after=), filtered as
// DomainConferences filters.
func (c *Client) DomainConferencePage(ctx context.Context, moid string, opts ListOptions, page PageOptions) (ConferencePage, error) {
	q := opts.values()
	page.set(q)
	var out ConferencePage
	err := c.do(ctx, http.MethodGet, withQuery("/v1/domains/"+url.PathEscape(moid)+"/conferences", q), nil, &out)
	return out, err
}
