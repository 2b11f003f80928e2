package console

import (
	"bytes"
	"context"
	"mime"
	"net/http"
	"net/url"
	"time"
)

// events relays the API's event stream (GET /v1/events as server-sent
// events) to the page with the session's token, which an EventSource
// cannot send itself. It ends when the page goes, the session ends, the
// console stops or the API ends the stream. When the API has no stream
// it answers 404, and the page's script reloads its live part now and
// then instead.
func (c *Console) events(w http.ResponseWriter, r *http.Request, s *session) {
	base, err := c.apiBase(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
		case <-s.done:
		case <-c.stop:
		}
		cancel()
	}()
	u := &upstream{c: c, s: s, base: base, ctx: ctx}
	path := "/v1/events"
	if t := r.URL.Query().Get("types"); t != "" {
		path += "?types=" + url.QueryEscape(t)
	}
	resp, err := u.open(ctx, http.MethodGet, path, nil, "text/event-stream")
	if err != nil {
		http.Error(w, apiError(err), http.StatusNotFound)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		http.Error(w, "Not available: the API has no event stream; the page reloads itself instead", http.StatusNotFound)
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if bytes.Contains(buf[:n], []byte("event: conference.")) {
				c.confs.changed(false)
			}
			_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
