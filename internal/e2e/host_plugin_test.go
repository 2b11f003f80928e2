package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
)

const readonlyToken = "e2e-readonly-0123456789"

// A plugin stopped in a running host and started again: meanwhile what it
// served answers 503 PLUGIN_STOPPED naming it, and the rest of the host
// runs on (creates, lists and ends work, the conferences stay); once
// started, its fresh instance serves again.
func TestStopAndStartAPluginInARunningHost(t *testing.T) {
	e := start(t, setup{nodes: 2, tune: func(c *config.Config) {
		c.API.Tokens = append(c.API.Tokens, config.Token{Name: "ro", Token: readonlyToken, Role: config.RoleReadonly})
	}})
	ctx := context.Background()
	name := e.st.Host.Name()
	first := e.mustCreate("before")
	api := "http://" + e.st.API.Addr()
	breakoutState := func() (int, string) { return get(t, api, "/v1/conferences/"+first.E164+"/breakout") }
	if code, msg := breakoutState(); code != http.StatusOK {
		t.Fatalf("breakout state before: %d %s", code, msg)
	}

	// Only an operator stops a plugin; the API does not stop itself; a
	// plugin the host does not run is named as such.
	ro := apiclient.New(api, readonlyToken)
	if _, err := ro.StopPlugin(ctx, name, "convene.breakout"); apiCode(err) != "FORBIDDEN" {
		t.Fatalf("a readonly token stopping a plugin: %v", err)
	}
	if _, err := e.client.StopPlugin(ctx, name, "convene.api"); apiCode(err) != "BAD_REQUEST" {
		t.Fatalf("the API stopping itself: %v", err)
	}
	if _, err := e.client.StopPlugin(ctx, name, "convene.brekout"); apiCode(err) != "UNKNOWN_PLUGIN" || !strings.Contains(err.Error(), "convene.breakout") {
		t.Fatalf("a plugin the host does not run: %v", err)
	}
	if _, err := e.client.StopPlugin(ctx, name, "convene.bus.nats"); apiCode(err) != "BAD_REQUEST" {
		t.Fatalf("the host's infrastructure: %v", err)
	}

	st, err := e.client.StopPlugin(ctx, name, "convene.breakout")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Plugins {
		want := "running"
		if p.ID == "convene.breakout" {
			want = "stopped"
		}
		if p.State != want {
			t.Fatalf("after the stop, plugin %s is %s, want %s", p.ID, p.State, want)
		}
	}
	code, msg := breakoutState()
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(msg, "PLUGIN_STOPPED: ") || !strings.Contains(msg, "convene.breakout") {
		t.Fatalf("breakout while stopped: %d %s", code, msg)
	}
	// The rest runs on.
	second := e.mustCreate("while breakout is stopped")
	if _, err := e.client.Conference(ctx, first.E164); err != nil {
		t.Fatal(err)
	}
	third := e.mustCreate("to end")
	if err := e.client.EndConference(ctx, third.E164); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	delete(e.made, third.E164)
	e.mu.Unlock()
	e.settled("while breakout is stopped")
	e.conferences()
	hosts, err := e.client.Hosts(ctx)
	if err != nil || len(hosts) != 1 || hosts[0].Host != name {
		t.Fatalf("GET /v1/hosts: %+v (%v)", hosts, err)
	}
	if p, _ := hosts[0].Plugin("convene.breakout"); p.State != "stopped" {
		t.Fatalf("GET /v1/hosts says breakout is %+v", p)
	}

	if _, err := e.client.StartPlugin(ctx, name, "convene.breakout"); err != nil {
		t.Fatal(err)
	}
	if code, msg := breakoutState(); code != http.StatusOK {
		t.Fatalf("breakout after the start: %d %s", code, msg)
	}
	v, ok := e.st.Host.Instance("breakout")
	if !ok || v == nil {
		t.Fatal("no breakout instance after the start")
	}
	if st := e.st.Host.Status(ctx); st.Servers[serverIndex(st, "breakout")].Instance != 2 {
		t.Fatalf("the breakout server after a restart: %+v", st.Servers[serverIndex(st, "breakout")])
	}
	if _, err := e.client.Conference(ctx, second.E164); err != nil {
		t.Fatal(err)
	}
	e.conferences()
}

func serverIndex(st host.HostStatus, name string) int {
	for i, s := range st.Servers {
		if s.Name == name {
			return i
		}
	}
	return -1
}
