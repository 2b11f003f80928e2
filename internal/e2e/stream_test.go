package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/testkit"
	"github.com/convene/convene/internal/testkit/stackkit"
)

// sseEvent is an event read off the wire.
type sseEvent struct {
	id   string
	kind string
	data string
}

// readEvents parses the stream into events, sent on out until the stream
// ends.
func readEvents(r *bufio.Reader, out chan<- sseEvent) {
	defer close(out)
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.data != "" {
				out <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			ev.kind = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		}
	}
}

// On a whole platform in one process: a stream follows a conference
// created and ended through the API, in order; the platform's records
// database serves GET /v1/logs.
func TestStreamFollowsAConference(t *testing.T) {
	ctx := context.Background()
	st, err := stack.Start(ctx, stack.Options{
		Config: config.Demo(), Listen: "127.0.0.1:0", SimNodes: 2,
		Records: "sqlite://" + filepath.Join(t.TempDir(), "records.db"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st.Stop(c)
	}()
	base := "http://" + st.API.Addr()
	client := apiclient.New(base, st.Token)
	defer client.CloseIdleConnections()
	testkit.Eventually(t, testkit.Wait, testkit.Cond("2 nodes up", func() bool { return stackkit.NodesUp(st) == 2 }))

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, base+"/v1/events?types=conference", nil)
	req.Header.Set("Authorization", "Bearer "+st.Token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	evs := make(chan sseEvent, 100)
	go readEvents(bufio.NewReader(resp.Body), evs)

	conf, err := client.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: "standup", Domain: "demo", Scale: 8, Resolution: "720p", DurationMinutes: 30})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.EndConference(ctx, conf.E164); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		select {
		case ev, ok := <-evs:
			if !ok {
				t.Fatalf("the stream ended after %v", got)
			}
			if ev.kind != "conference.changed" {
				t.Fatalf("event %q on a stream of conference events", ev.kind)
			}
			var ntf protocol.ConfStateNtf
			if err := json.Unmarshal([]byte(ev.data), &ntf); err != nil {
				t.Fatalf("data %q: %v", ev.data, err)
			}
			if ntf.E164 != conf.E164 {
				continue
			}
			got = append(got, ntf.Type+"/"+ntf.State)
		case <-time.After(10 * time.Second):
			t.Fatalf("no event within 10 s; so far %v", got)
		}
	}
	want := []string{protocol.MAUConfStateNtf + "/" + protocol.StateRunning, protocol.MAUReleaseConfNtf + "/"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", got, want)
	}

	// The API has the platform's records database.
	if _, err := client.Logs(ctx, apiclient.LogOptions{E164: conf.E164}); err != nil {
		t.Fatalf("GET /v1/logs: %v", err)
	}
}
