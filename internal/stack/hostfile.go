package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/convene/convene/internal/alarms"
	"github.com/convene/convene/internal/api"
	"github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/bus/busplugin"
	"github.com/convene/convene/internal/console"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/medianode"
	"github.com/convene/convene/internal/platform"
	"github.com/convene/convene/internal/records"
	"github.com/convene/convene/internal/registry"
	"github.com/convene/convene/internal/resources"
	"github.com/convene/convene/internal/scheduler"
	"github.com/convene/convene/internal/store"
)

// The names of the stack's host file: its infrastructure entries (what a
// server's section names with bus:, store:, records:) and its servers.
const (
	BusResource     = "bus"
	StoreResource   = "store"
	RecordsResource = "records"

	rmsServer      = "rms"
	pmsServer      = "pms"
	registryServer = "registry"
	nodesServer    = "nodes"
	breakoutServer = "breakout"
	apiServer      = "api"
	consoleServer  = "console"
)

// Server is one more server for the stack's host, after its own: a
// section of a host file (plugin: and the plugin's keys) under a name.
// Its references to the stack's infrastructure use the names above.
type Server struct {
	Name    string
	Section map[string]any
}

// schedulerServer names scheduler instance i (0-based) in the host file.
func schedulerServer(i int) string { return fmt.Sprintf("scheduler-%d", i+1) }

// hostFile is the host file the stack runs: every service of the
// platform in one host, as `convene serve` runs them. On the embedded bus
// the host answers management requests and the API lists the hosts that
// join it; on an external bus the host keeps to itself (host.bus: none),
// since the credentials given for it need not hold the host role's.
func hostFile(o Options, token, nodePrefix string) (*host.File, error) {
	cfg := o.Config
	dataDir := o.DataDir
	inMemory := dataDir == ""
	if inMemory {
		dataDir = ".convene" // named, never written: every entry keeps its data in memory
	}

	natsSec := []any{"plugin", busplugin.ID}
	if o.NATS != "" {
		natsSec = append(natsSec, "url", o.NATS)
		if o.NATSCreds != "" {
			natsSec = append(natsSec, "creds", o.NATSCreds)
		}
		natsSec = append(natsSec, "tls", mapping("ca", o.NATSTLS.CAFile, "cert", o.NATSTLS.CertFile, "key", o.NATSTLS.KeyFile))
	} else {
		listen := o.NATSListen
		if listen == "" {
			listen = "none"
		}
		emb := []any{"listen", listen, "over_tcp", o.BusOverTCP}
		if inMemory {
			emb = append(emb, "in_memory", true)
		} else {
			emb = append(emb, "creds", filepath.Join(dataDir, "creds"))
		}
		natsSec = append(natsSec, "embedded", mapping(emb...))
	}
	if len(o.PeerCreds) > 0 {
		natsSec = append(natsSec, "peer_creds", o.PeerCreds)
	}

	storeSec := []any{"plugin", store.PluginID}
	if o.Redis != "" {
		storeSec = append(storeSec, "url", o.Redis)
	} else if inMemory {
		storeSec = append(storeSec, "embedded", mapping("in_memory", true))
	} else {
		storeSec = append(storeSec, "embedded", mapping("dir", filepath.Join(dataDir, "store")))
	}
	infra := []any{BusResource, mapping(natsSec...), StoreResource, mapping(storeSec...)}
	if o.Records != "" {
		infra = append(infra, RecordsResource, mapping("plugin", records.PluginID, "url", o.Records))
	}

	uses := func(plugin string, kv ...any) *yaml.Node {
		return mapping(append([]any{"plugin", plugin, "bus", BusResource}, kv...)...)
	}
	servers := []any{
		rmsServer, uses(resources.PluginID),
		pmsServer, uses(platform.PluginID, "in_memory", inMemory),
	}
	for i := range max(1, o.Schedulers) {
		sched := []any{"store", StoreResource}
		if o.Records != "" {
			sched = append(sched, "records", RecordsResource)
		}
		servers = append(servers, schedulerServer(i), uses(scheduler.PluginID, sched...))
	}
	servers = append(servers, registryServer, uses(registry.PluginID))
	if o.SimNodes > 0 {
		sim := []any{"count", o.SimNodes, "prefix", nodePrefix}
		if o.SimCapacity > 0 {
			sim = append(sim, "capacity", o.SimCapacity)
		}
		if o.SimSIP {
			sim = append(sim, "sip", "127.0.0.1")
		}
		servers = append(servers, nodesServer, uses(medianode.SimPluginID, sim...))
	}
	apiSec := []any{"store", StoreResource, "listen", o.Listen, "operator_token", token,
		"hosts_bus", map[bool]string{true: "", false: BusResource}[o.NATS != ""]}
	if o.Records != "" {
		apiSec = append(apiSec, "records", RecordsResource)
	}
	servers = append(servers,
		breakoutServer, uses(breakout.PluginID, "store", StoreResource),
		apiServer, uses(api.PluginID, apiSec...),
	)
	if o.Console {
		servers = append(servers, consoleServer, mapping("plugin", console.PluginID))
	}
	if o.Alarms {
		sec := []any{"store", StoreResource, "hosts_bus", map[bool]string{true: "", false: BusResource}[o.NATS != ""]}
		if o.Records != "" {
			sec = append(sec, "records", RecordsResource)
		}
		servers = append(servers, "alarms", uses(alarms.PluginID, sec...))
	}
	for _, s := range o.Servers {
		servers = append(servers, s.Name, s.Section)
	}

	var topo yaml.Node
	if err := topo.Encode(cfg); err != nil {
		return nil, fmt.Errorf("stack: the topology: %w", err)
	}
	hostSec := []any{"name", hostName(cfg.Platform), "platform", cfg.Platform, "data_dir", dataDir}
	if o.NATS != "" {
		hostSec = append(hostSec, "bus", host.NoBus)
	}
	doc := mapping(
		"host", mapping(hostSec...),
		"infrastructure", mapping(infra...),
		"servers", mapping(servers...),
		"topology", &topo,
	)
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("stack: the host file: %w", err)
	}
	return host.Parse("the host of platform "+cfg.Platform, data)
}

// mapping is a YAML mapping of the keys and values given in turn, in
// that order (a host file starts its servers in the order it lists them).
func mapping(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(kv); i += 2 {
		v, ok := kv[i+1].(*yaml.Node)
		if !ok {
			v = new(yaml.Node)
			if err := v.Encode(kv[i+1]); err != nil {
				panic(fmt.Sprintf("stack: host file key %v: %v", kv[i], err))
			}
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: fmt.Sprint(kv[i])}, v)
	}
	return n
}

var notHostChar = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// hostName is the machine's name (its first label), else convene-<moid>.
func hostName(moid string) string {
	n, _ := os.Hostname()
	n, _, _ = strings.Cut(n, ".")
	n = notHostChar.ReplaceAllString(n, "-")
	if n == "" || len(n) > 64 {
		n = "convene-" + moid
	}
	if len(n) > 64 {
		n = moid
	}
	return n
}
