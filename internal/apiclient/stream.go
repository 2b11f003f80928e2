package apiclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// StreamEvent is one event of the event stream (GET /v1/events asked
// with Accept: text/event-stream): its id (increasing along a stream),
// its kind (conference.changed, node.changed, room.changed,
// platform.changed, licence.changed, call.started, call.answered,
// call.ended, alarm.raised, alarm.cleared, alarm.acked...) and the
// notification as published on the bus.
type StreamEvent struct {
	ID   uint64
	Kind string
	Data json.RawMessage
}

// StreamEvents follows the event stream, calling fn with each event in
// order, until ctx ends (nil), fn returns an error (that error), or the
// stream ends (the API dropped a client that fell behind, or is shutting
// down: io.ErrUnexpectedEOF wrapped). types, when given, are the kinds or
// families ("call", "alarm") to follow. fn runs on the reading goroutine:
// a slow fn makes the client fall behind.
func (c *Client) StreamEvents(ctx context.Context, types []string, fn func(StreamEvent) error) error {
	q := url.Values{}
	if len(types) > 0 {
		q.Set("types", strings.Join(types, ","))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+withQuery("/v1/events", q), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.httpc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ResponseError(resp)
	}
	err = readStream(bufio.NewReader(resp.Body), fn)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// readStream parses server-sent events: lines field: value, an empty
// line ending each event, comment lines (":") ignored.
func readStream(r *bufio.Reader, fn func(StreamEvent) error) error {
	var (
		ev      StreamEvent
		data    []string
		hasData bool
	)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("apiclient: the event stream ended: %w", errStreamEnded(err))
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if hasData {
				ev.Data = json.RawMessage(strings.Join(data, "\n"))
				if err := fn(ev); err != nil {
					return err
				}
			}
			ev, data, hasData = StreamEvent{}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.ID, _ = strconv.ParseUint(value, 10, 64)
		case "event":
			ev.Kind = value
		case "data":
			data, hasData = append(data, value), true
		}
	}
}

func errStreamEnded(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
