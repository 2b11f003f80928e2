package drill

import (
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/license"
)

// The drills' platform: one platform, two server rooms, one tenant whose
// licence leaves room for every conference a drill books, and an operator
// token for the drill's client.
const (
	platformMoid = "plat-a"
	tenant       = "drill"
	apiToken     = "drill-token-0123456789"
)

var rooms = []string{"room-a1", "room-a2"}

// topology is the drills' topology file, as `convene serve --config`
// reads it.
func topology(conferences int) *config.Config {
	limits := license.Limits{}
	for _, c := range license.All() {
		limits[c.String()] = max(conferences*2, 100)
	}
	c := &config.Config{
		Platform: platformMoid,
		Platforms: []config.Platform{{Moid: platformMoid, Name: "Drill platform", NumberSegment: "66", Rooms: []config.Room{
			{Moid: rooms[0], Name: "Main hall", Type: "main"}, {Moid: rooms[1], Name: "Annex", Type: "secondary"},
		}}},
		Domains: []config.Domain{{Moid: tenant, Name: "Drill tenant", Platform: platformMoid, License: limits}},
		API:     config.API{Tokens: []config.Token{{Name: "drill", Token: apiToken, Role: config.RoleOperator}}},
	}
	return c
}

func writeTopology(path string, c *config.Config) error {
	data, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// hostSpec is one host of a drill's deployment: one process.
type hostSpec struct {
	// name is the host's name (host.name) and the process's.
	name string
	// kind is what it runs: api, scheduler, rms, pms, registry, breakout
	// or nodes.
	kind string
	// listen is the API's address (kind api).
	listen string
	// id is a scheduler's instance id (kind scheduler).
	id string
	// nodes are the ids of the media nodes it simulates (kind nodes):
	// <prefix>-1 ... <prefix>-N. room is their room; "" spreads them
	// over the platform's rooms in turn.
	nodes  []string
	prefix string
	room   string
}

// The plugin IDs of the services the drills run.
const (
	pluginBus       = "convene.bus.nats"
	pluginStore     = "convene.store.redis"
	pluginAPI       = "convene.api"
	pluginScheduler = "convene.scheduler"
	pluginRMS       = "convene.rms"
	pluginPMS       = "convene.pms"
	pluginRegistry  = "convene.registry"
	pluginBreakout  = "convene.breakout"
	pluginMCUSim    = "convene.mcusim"
)

// hostEnv is what every host file of a deployment shares.
type hostEnv struct {
	dir      string // the deployment's directory
	natsURL  string
	credsDir string
	redisURL string
	topology string
	capacity int // conferences a simulated node takes
}

// hostFile renders h's host file.
func (e hostEnv) hostFile(h hostSpec) ([]byte, error) {
	server := map[string]any{}
	switch h.kind {
	case "api":
		server["plugin"] = pluginAPI
		server["listen"] = h.listen
	case "scheduler":
		server["plugin"] = pluginScheduler
		server["id"] = h.id
	case "rms":
		server["plugin"] = pluginRMS
	case "pms":
		server["plugin"] = pluginPMS
	case "registry":
		server["plugin"] = pluginRegistry
	case "breakout":
		server["plugin"] = pluginBreakout
	case "nodes":
		server["plugin"] = pluginMCUSim
		server["count"] = len(h.nodes)
		server["prefix"] = h.prefix
		server["capacity"] = e.capacity
		if h.room != "" {
			server["rooms"] = []string{h.room}
		}
	default:
		return nil, fmt.Errorf("drill: no host of kind %q", h.kind)
	}
	doc := map[string]any{
		"host": map[string]any{
			"name":     h.name,
			"data_dir": filepath.Join(e.dir, "hosts", h.name),
			"platform": platformMoid,
		},
		"infrastructure": map[string]any{
			"bus":   map[string]any{"plugin": pluginBus, "url": e.natsURL, "creds": e.credsDir},
			"store": map[string]any{"plugin": pluginStore, "url": e.redisURL},
		},
		"servers":  map[string]any{h.kind: server},
		"topology": e.topology,
	}
	return yaml.Marshal(doc)
}
