package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/testkit"
)

// The same end-to-end scenario with every service in one host, and split
// over six hosts joined by NATS and Redis: conferences are created,
// listed and ended; a media node dies and its conferences run again
// elsewhere, none lost or doubled; the API lists every host.
func TestScenarioInOneHost(t *testing.T) {
	scenario(t, startCluster(t, oneHost), []string{"all"}, "all")
}

func TestScenarioSplitOverHosts(t *testing.T) {
	scenario(t, startCluster(t, splitHosts), []string{"api", "breakout", "control", "nodes", "sched-a", "sched-b"}, "breakout")
}

// scenario runs on a deployment of hosts; breakoutHost runs breakout with
// the API that serves its routes.
func scenario(t *testing.T, c *cluster, hosts []string, breakoutHost string) {
	ctx := context.Background()
	c.nodesUp(3)

	// GET /v1/hosts lists every host of the deployment, each running its
	// plugins.
	testkit.Eventually(t, testkit.Wait, testkit.Cond(fmt.Sprintf("the API to list the hosts %v", hosts), func() bool {
		list, err := c.client.Hosts(ctx)
		if err != nil {
			return false
		}
		var names []string
		for _, h := range list {
			for _, p := range h.Plugins {
				if p.State != "running" {
					return false
				}
			}
			names = append(names, h.Host)
		}
		return slices.Equal(names, hosts)
	}))

	var made []string
	for i := range 6 {
		made = append(made, c.create(fmt.Sprintf("scenario %d", i)).E164)
	}
	c.exactly("after six creates")
	// Breakout's routes answer on the API of its host.
	if code, msg := get(t, c.apiURL(breakoutHost), "/v1/conferences/"+made[2]+"/breakout"); code != http.StatusOK {
		t.Fatalf("breakout state on host %s: %d %s", breakoutHost, code, msg)
	}
	c.end(made[0])
	c.end(made[1])
	c.exactly("after two ends")
	if _, err := c.client.Conference(ctx, made[0]); apiCode(err) != "CONF_NOT_FOUND" {
		t.Fatalf("an ended conference: %v, want CONF_NOT_FOUND", err)
	}

	// The node hosting the most conferences dies: they run again on the
	// others, each once.
	var victim string
	most := -1
	for id, confs := range c.hosted() {
		if len(confs) > most {
			victim, most = id, len(confs)
		}
	}
	if most < 1 {
		t.Fatal("no node hosts a conference")
	}
	c.nodes()[victim].kill()
	c.exactly("after node " + victim + " died")
	for id, confs := range c.hosted() {
		if id == victim && len(confs) > 0 {
			t.Fatalf("the dead node %s still hosts %v", victim, confs)
		}
	}

	// A create after the failover still works; then everything ends.
	made = append(made, c.create("after the failover").E164)
	c.exactly("after a create on the survivors")
	c.mu.Lock()
	left := make([]string, 0, len(c.made))
	for e := range c.made {
		left = append(left, e)
	}
	c.mu.Unlock()
	for _, e := range left {
		c.end(e)
	}
	c.exactly("after every end")
	list, err := c.client.DomainConferences(ctx, "acme", apiclient.ListOptions{})
	if err != nil || len(list) != 0 {
		t.Fatalf("after every end the API lists %v (%v)", list, err)
	}
}
