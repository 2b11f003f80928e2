package alarms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/convene/convene/internal/apiclient"
)

// webhookQueue is the most alarms waiting for the webhook; beyond it the
// oldest is dropped (and logged), so that evaluation never waits.
const webhookQueue = 10000

// checkWebhookURL refuses a webhook address that is not http(s)://host/...
func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: webhook_url: give an http:// or https:// address with a host", ErrOptions)
	}
	return nil
}

// webhook sends every new alarm to one URL: a POST of the ALARM_RAISED
// event as JSON with the header Idempotency-Key set to the alarm's id, so
// that a receiver takes an alarm sent again (its reply was lost) once.
// Alarms go one after another, each tried again with a doubling backoff
// until the receiver takes it (2xx) or refuses it for good (a 4xx other
// than 408, 425 and 429).
type webhook struct {
	url     string
	shown   string // scheme and host only: the URL may hold a secret
	client  *http.Client
	backoff time.Duration
	max     time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	queue   []apiclient.AlarmEvent
	wake    chan struct{}
	dropped int
}

func newWebhook(o Options, client *http.Client, log *slog.Logger) *webhook {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	u, _ := url.Parse(o.WebhookURL)
	return &webhook{url: o.WebhookURL, shown: u.Scheme + "://" + u.Host, client: client,
		backoff: o.WebhookBackoff, max: o.WebhookMaxBackoff, log: log, wake: make(chan struct{}, 1)}
}

// send queues an event; it never waits.
func (h *webhook) send(ev apiclient.AlarmEvent) {
	h.mu.Lock()
	if len(h.queue) >= webhookQueue {
		h.queue = h.queue[1:]
		h.dropped++
	}
	h.queue = append(h.queue, ev)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run delivers queued events until ctx ends.
func (h *webhook) run(ctx context.Context) {
	for {
		h.mu.Lock()
		var ev apiclient.AlarmEvent
		have := len(h.queue) > 0
		if have {
			ev = h.queue[0]
		}
		dropped := h.dropped
		h.dropped = 0
		h.mu.Unlock()
		if dropped > 0 {
			h.log.Warn("alarms: the webhook fell behind; the oldest alarms were not sent", "dropped", dropped, "webhook", h.shown)
		}
		if !have {
			select {
			case <-ctx.Done():
				return
			case <-h.wake:
				continue
			}
		}
		if !h.deliver(ctx, ev) {
			return
		}
		h.mu.Lock()
		if len(h.queue) > 0 && h.queue[0].Alarm.ID == ev.Alarm.ID {
			h.queue = h.queue[1:]
		}
		h.mu.Unlock()
	}
}

// deliver posts one event until it is taken or refused for good; false
// when ctx ended first.
func (h *webhook) deliver(ctx context.Context, ev apiclient.AlarmEvent) bool {
	body, err := json.Marshal(ev)
	if err != nil {
		h.log.Error("alarms: encoding an alarm for the webhook failed", "alarm", ev.Alarm.ID, "err", err)
		return true
	}
	wait := h.backoff
	for attempt := 1; ; attempt++ {
		status, err := h.post(ctx, ev.Alarm.ID, body)
		switch {
		case err == nil && status/100 == 2:
			return true
		case err == nil && status/100 == 4 && status != http.StatusRequestTimeout && status != http.StatusTooEarly && status != http.StatusTooManyRequests:
			h.log.Warn("alarms: the webhook refused an alarm; it is not sent again", "alarm", ev.Alarm.ID, "status", status, "webhook", h.shown)
			return true
		case ctx.Err() != nil:
			return false
		}
		if attempt == 1 || attempt%10 == 0 {
			h.log.Warn("alarms: the webhook did not take an alarm; trying again", "alarm", ev.Alarm.ID, "status", status,
				"attempt", attempt, "webhook", h.shown, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(2*wait, h.max)
	}
}

func (h *webhook) post(ctx context.Context, id string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", id)
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, urlFree(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// urlFree is err without the URL a *url.Error names (it may hold a
// secret).
func urlFree(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
