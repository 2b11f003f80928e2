package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/httpkit"
)

// The Go client reads every field of a host's status as the API writes
// it: the two declarations of the body stay one.
func TestHostStatusBodyMatchesTheClient(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := host.HostStatus{
		Host: "h", Platform: "p", Running: true, Started: at, At: at.Add(time.Second), IntervalMS: 5000,
		Plugins:        []host.PluginStatus{{ID: "convene.api", State: host.StateRunning}, {ID: "convene.x", State: host.StateFailed, Error: "e"}},
		Infrastructure: []host.ServerStatus{{Name: "bus", Plugin: "convene.bus.nats", State: host.StateRunning, Health: "ok", Instance: 1}},
		Servers: []host.ServerStatus{{Name: "s", Plugin: "convene.x", State: host.StateFailed, Error: "e", Health: "unhealthy: x",
			Deployment: host.Distributed, Instance: 3, Components: []host.ComponentStatus{
				{Name: "c", Plugin: "convene.y", State: host.StateStopped, Error: "f", Health: "ok", Instance: 2}}}},
		Channels: []host.ChannelStatus{{Name: "ch", Deployment: host.Distributed, Subject: "channel.ch", Queue: "ch",
			Capacity: 64, Queued: 1, Receivers: 2, Refused: 3}},
	}
	want, err := json.Marshal(hostList{Hosts: []host.HostStatus{st}})
	if err != nil {
		t.Fatal(err)
	}
	var read apiclient.HostList
	if err := json.Unmarshal(want, &read); err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(read)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("the client reads\n%s\nthe API wrote\n%s", got, want)
	}
}

// A mounted route keeps its scope; one the API does not know is refused.
func TestKitRoute(t *testing.T) {
	h := http.NotFoundHandler()
	for _, c := range []struct {
		rt   host.Route
		want httpkit.Scope
		ok   bool
	}{
		{host.Route{Pattern: "GET /a", Handler: h}, httpkit.ScopePlatform, true},
		{host.Route{Pattern: "GET /a", Handler: h, Open: true}, httpkit.ScopeOpen, true},
		{host.Route{Pattern: "GET /a/{e164}", Handler: h, Scope: "conference"}, httpkit.ScopeConference, true},
		{host.Route{Pattern: "GET /a/{moid}", Handler: h, Scope: "domain"}, httpkit.ScopeDomain, true},
		{host.Route{Pattern: "POST /a", Handler: h, Scope: "body"}, httpkit.ScopeBody, true},
		{host.Route{Pattern: "GET /a", Handler: h, Scope: "tenant", Plugin: "convene.x"}, 0, false},
	} {
		got, err := kitRoute(c.rt)
		if (err == nil) != c.ok || (c.ok && got.Scope != c.want) {
			t.Errorf("%+v: %v %v, want %v (ok %v)", c.rt, got.Scope, err, c.want, c.ok)
		}
	}
}
