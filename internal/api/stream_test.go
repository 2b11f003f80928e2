package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// streamHarness is a harness whose API also follows the stream's
// subjects.
func streamHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	subs, err := h.srv.startStream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	})
	if err := h.srv.bus.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

// openStream starts a stream and returns its events as they come; the
// stream ends with the test (or cancel).
func openStream(t *testing.T, h *harness, types ...string) (<-chan apiclient.StreamEvent, <-chan error, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	before := h.srv.stream.count()
	evs, errc := make(chan apiclient.StreamEvent, 1000), make(chan error, 1)
	go func() {
		errc <- h.client.StreamEvents(ctx, types, func(ev apiclient.StreamEvent) error {
			evs <- ev
			return nil
		})
	}()
	testkit.Await(t, "the stream subscribed", func() bool { return h.srv.stream.count() > before })
	return evs, errc, cancel
}

func next(t *testing.T, evs <-chan apiclient.StreamEvent) apiclient.StreamEvent {
	t.Helper()
	select {
	case ev := <-evs:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return apiclient.StreamEvent{}
}

// Notifications on every subject the stream follows arrive as events of
// their kind, with increasing ids, each data one JSON line; a call or
// alarm notification keeps the kind it carries.
func TestStreamKinds(t *testing.T) {
	h := streamHarness(t)
	evs, _, _ := openStream(t, h)
	sends := []struct {
		subject string
		msg     any
		kind    string
	}{
		{protocol.SubjectCMNotifications, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: "6600001"}, "conference.changed"},
		{protocol.SubjectRMSNotify(platform), map[string]any{"type": "RMS_NODE_STATE_NTF", "node": "n1", "state": "down"}, "node.changed"},
		{protocol.SubjectServerRoomNotify, map[string]any{"type": "SERVER_ROOM_STATE_NOTIFY", "room": "r1"}, "room.changed"},
		{protocol.SubjectPlatformNotify, map[string]any{"type": "PLATFORM_STATE_NOTIFY", "platform": "p"}, "platform.changed"},
		{protocol.SubjectLicenseNotify, map[string]any{"type": "LICENSE_NTF", "domain": "acme"}, "licence.changed"},
		{protocol.SubjectCallNotify(platform), map[string]any{"kind": "call.started", "call": map[string]any{"id": "c1", "note": "two\nlines"}}, "call.started"},
		{protocol.SubjectCallNotify(platform), map[string]any{"kind": "call.ended", "call": map[string]any{"id": "c1"}}, "call.ended"},
		{protocol.SubjectCallNotify(platform), map[string]any{"kind": "mcu", "call": map[string]any{"id": "c1"}}, "call.changed"},
		{protocol.SubjectAlarmNotify(platform), map[string]any{"kind": "alarm.raised", "alarm": map[string]any{"id": "a1"}}, "alarm.raised"},
		{protocol.SubjectAlarmNotify(platform), map[string]any{"kind": "alarm.cleared\nevent: x", "alarm": map[string]any{"id": "a1"}}, "alarm.changed"},
	}
	for _, s := range sends {
		if err := h.fakes.Publish(s.subject, s.msg); err != nil {
			t.Fatal(err)
		}
		// One at a time: subjects are delivered independently.
		ev := next(t, evs)
		if ev.Kind != s.kind {
			t.Errorf("%s: event %q, want %q (%s)", s.subject, ev.Kind, s.kind, ev.Data)
		}
		if !json.Valid(ev.Data) || strings.Contains(string(ev.Data), "\n") {
			t.Errorf("%s: data is not one JSON line: %q", s.subject, ev.Data)
		}
	}
}

// Ids increase along the stream, and types= keeps the kinds and families
// asked for.
func TestStreamIDsAndFilter(t *testing.T) {
	h := streamHarness(t)
	all, _, _ := openStream(t, h)
	calls, _, _ := openStream(t, h, "call", "node.changed")
	for i := range 20 {
		subject, msg := protocol.SubjectAlarmNotify(platform), any(map[string]any{"kind": "alarm.raised", "n": i})
		switch i % 3 {
		case 1:
			subject, msg = protocol.SubjectCallNotify(platform), map[string]any{"kind": "call.answered", "n": i}
		case 2:
			subject, msg = protocol.SubjectRMSNotify(platform), map[string]any{"type": "RMS_NODE_STATE_NTF", "n": i}
		}
		if err := h.fakes.Publish(subject, msg); err != nil {
			t.Fatal(err)
		}
	}
	var last uint64
	kinds := map[string]int{}
	for range 20 {
		ev := next(t, all)
		if ev.ID <= last {
			t.Fatalf("id %d after %d", ev.ID, last)
		}
		last = ev.ID
		kinds[ev.Kind]++
	}
	if kinds["alarm.raised"] != 7 || kinds["call.answered"] != 7 || kinds["node.changed"] != 6 {
		t.Fatalf("kinds %v", kinds)
	}
	for range 13 {
		ev := next(t, calls)
		if ev.Kind != "call.answered" && ev.Kind != "node.changed" {
			t.Fatalf("the filtered stream got %s", ev.Kind)
		}
	}
	select {
	case ev := <-calls:
		t.Fatalf("the filtered stream got one more: %s", ev.Kind)
	default:
	}
}

// Without Accept: text/event-stream, GET /v1/events is the JSON list as
// before; a bad types= is refused naming it.
func TestStreamNegotiation(t *testing.T) {
	h := streamHarness(t)
	status, body := h.do(http.MethodGet, "/v1/events", "")
	var list apiclient.EventList
	if status != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("GET /v1/events without Accept: %d %s", status, body)
	}
	for _, tc := range []struct{ query, param string }{
		{"?types=Call", `\"types\"`},
		{"?types=call%0Aevent", `\"types\"`},
		{"?e164=123", `\"e164\"`},
	} {
		req, _ := http.NewRequest(http.MethodGet, h.http.URL+"/v1/events"+tc.query, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Accept", "text/html, text/event-stream;q=0.9")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 4096)
		n, _ := resp.Body.Read(b)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b[:n]), tc.param) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.query, resp.StatusCode, b[:n], tc.param)
		}
	}
}

// A client that does not read is dropped once it falls its buffer behind;
// the bus handler never waits for it, and the stream's other clients go
// on.
func TestStreamSlowClientDropped(t *testing.T) {
	h := streamHarness(t)
	h.srv.streamBuffer = 8
	good, _, _ := openStream(t, h)

	// The slow client reads the headers, then nothing.
	req, _ := http.NewRequest(http.MethodGet, h.http.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Accept", "text/event-stream")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if h.srv.stream.count() != 2 {
		t.Fatalf("%d streams open, want 2", h.srv.stream.count())
	}
	big := strings.Repeat("x", 64<<10)
	published := 0
	// More than socket buffers hold: the slow client's writes block, its
	// buffer fills, and it is dropped; publish never waits.
	for h.srv.stream.count() == 2 && published < 4096 {
		h.srv.stream.publish("alarm.raised", []byte(`"`+big+`"`))
		published++
		// The good client keeps up.
		if ev := next(t, good); ev.Kind != "alarm.raised" {
			t.Fatalf("good client got %s", ev.Kind)
		}
	}
	if h.srv.stream.count() != 1 {
		t.Fatalf("after %d events of 64 KiB the slow client was not dropped", published)
	}
	if h.srv.stream.dropped != 1 {
		t.Fatalf("dropped %d clients, want 1", h.srv.stream.dropped)
	}
	// The good one still receives.
	h.srv.stream.publish("alarm.cleared", []byte(`{}`))
	if ev := next(t, good); ev.Kind != "alarm.cleared" {
		t.Fatalf("good client got %s", ev.Kind)
	}
}

// The hub drops a subscriber whose buffer is full without waiting, and
// keeps the others.
func TestStreamHubDropsFullSubscriber(t *testing.T) {
	hub := newStreamHub()
	slow := hub.subscribe(nil, 2)
	fast := hub.subscribe(nil, 100)
	for range 3 {
		hub.publish("x.y", []byte(`{}`))
	}
	select {
	case <-slow.done:
	default:
		t.Fatal("the full subscriber was not dropped")
	}
	if !slow.slow || hub.count() != 1 || len(fast.c) != 3 {
		t.Fatalf("slow %v, count %d, fast has %d", slow.slow, hub.count(), len(fast.c))
	}
	hub.close()
	select {
	case <-fast.done:
	default:
		t.Fatal("close did not end the subscriber")
	}
	if hub.subscribe(nil, 1) != nil {
		t.Fatal("a closed hub took a subscriber")
	}
}

// A client that disconnects frees its subscriber.
func TestStreamDisconnectFrees(t *testing.T) {
	h := streamHarness(t)
	_, errc, cancel := openStream(t, h)
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("stream ended with %v", err)
	}
	testkit.Await(t, "the subscriber freed", func() bool { return h.srv.stream.count() == 0 })

	// The same with a raw connection closed by the client.
	req, _ := http.NewRequest(http.MethodGet, h.http.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("first line %q, %v", line, err)
	}
	if h.srv.stream.count() != 1 {
		t.Fatalf("%d streams open, want 1", h.srv.stream.count())
	}
	resp.Body.Close()
	testkit.Await(t, "the subscriber freed", func() bool { return h.srv.stream.count() == 0 })
}

// Heartbeats keep an idle stream alive.
func TestStreamHeartbeat(t *testing.T) {
	h := streamHarness(t)
	h.srv.streamHeartbeat = 10 * time.Millisecond
	req, _ := http.NewRequest(http.MethodGet, h.http.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == ": heartbeat\n" {
			return
		}
	}
}

// Shutdown ends open streams instead of waiting for them, and a client
// sees its stream end.
func TestStreamShutdown(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Listen = "127.0.0.1:0" })
	if err := h.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := apiclient.New("http://"+h.srv.Addr(), testToken)
	defer c.CloseIdleConnections()
	errc := make(chan error, 1)
	go func() {
		errc <- c.StreamEvents(context.Background(), nil, func(apiclient.StreamEvent) error { return nil })
	}()
	testkit.Await(t, "the stream open", func() bool { return h.srv.stream.count() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-errc; err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("the client's stream ended with %v, want the end of the stream", err)
	}
}
