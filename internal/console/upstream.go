package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/convene/convene/internal/apiclient"
)

// upstream is one page's way to the API: the session's token, the API's
// address, a deadline.
type upstream struct {
	c    *Console
	s    *session
	base string
	ctx  context.Context
	// fragment says the request reloads a page's live part.
	fragment bool
}

// up is the request's way to the API; cancel when the page is done.
func (c *Console) up(r *http.Request, s *session) (*upstream, context.CancelFunc, error) {
	base, err := c.apiBase(r)
	if err != nil {
		return nil, func() {}, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.opts.RequestTimeout)
	if r.Header.Get("HX-Request") != "" && r.Header.Get("X-Console-Fresh") != "" {
		// The page's script asks for what no event announced (its stream
		// just opened, or it has none): read the platform again.
		c.confs.changed(false)
	}
	return &upstream{c: c, s: s, base: base, ctx: ctx, fragment: r.Header.Get("HX-Request") != ""}, cancel, nil
}

// platformConferences are the conferences of a platform (operator and
// readonly sessions), through the console's cache: a page drawn from
// scratch (fragment false) may show a list a few seconds old.
func (u *upstream) platformConferences(platform string, fragment bool) ([]apiclient.Conference, error) {
	return u.c.confs.get(u.ctx, platform, !fragment, func(ctx context.Context) ([]apiclient.Conference, error) {
		return u.api().PlatformConferences(ctx, platform, "")
	})
}

// warmPlatformConferences has the console's cache read a platform's
// list behind the page, for the pages that need it whole.
func (u *upstream) warmPlatformConferences(platform string) {
	u.c.confs.warm(u.ctx, platform, func(ctx context.Context) ([]apiclient.Conference, error) {
		return u.api().PlatformConferences(ctx, platform, "")
	})
}

// api is the typed client of the API's established routes.
func (u *upstream) api() *apiclient.Client { return u.s.client(u.base) }

// do calls a route the typed client lacks (the records, calls and alarms
// routes): in as JSON when not nil, a 2xx answer decoded into out.
func (u *upstream) do(method, path string, in, out any) error {
	resp, err := u.open(u.ctx, method, path, in, "")
	if err != nil {
		return err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
	}()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("console: the answer to %s %s: %w", method, path, err)
	}
	return nil
}

// open sends a request and returns a 2xx response for the caller to read
// and close; any other answer is an *apiclient.Error.
func (u *upstream) open(ctx context.Context, method, path string, in any, accept string) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+u.s.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := u.c.httpc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer func() { _ = resp.Body.Close() }()
		return nil, apiclient.ResponseError(resp)
	}
	return resp, nil
}

// The bodies of the API's breakout routes, as far as the console reads
// them (the records, calls and alarms routes' are apiclient's).

// breakoutView is GET /v1/conferences/{e164}/breakout.
type breakoutView struct {
	Active    bool `json:"active"`
	RoomInfos []struct {
		RoomID    uint32 `json:"roomID"`
		Name      string `json:"name"`
		MixerMode uint32 `json:"mixerMode"`
	} `json:"roomInfos"`
	Users []struct {
		UserID      uint32 `json:"userId"`
		CurrentRoom uint32 `json:"userCurrentRoomId"`
		PresetRoom  uint32 `json:"userPresetRoomId"`
		Privilege   uint32 `json:"privilege"`
		Online      bool   `json:"online"`
	} `json:"users"`
}

// audioView is GET /v1/conferences/{e164}/breakout/audio, who hears whom.
type audioView struct {
	Hearing []struct {
		UserID uint32   `json:"userID"`
		Room   uint32   `json:"room"`
		Hears  []uint32 `json:"hears"`
	} `json:"hearing"`
}
