package host

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// File is a host file, read and checked: what one host runs.
//
//	host:           {name, data_dir, platform, bus, status_interval}
//	infrastructure: name → {plugin: ID, <the plugin's keys>}
//	servers:        name → {plugin: ID, components: [...], deployment: {type}, <the plugin's keys>}
//	channels:       name → {deployment: {type: local|distributed}, capacity, subject, queue, bus}
//	topology:       a file path, {file: path}, or the topology inline
type File struct {
	// Path is the file's name as given (in every error message).
	Path           string
	Host           HostConfig
	Infrastructure []*Section
	Servers        []*ServerSection
	Channels       []*ChannelSection
	Topology       Topology
}

// HostConfig is the host: section.
type HostConfig struct {
	// Name is unique among the hosts of a platform; default the machine's
	// host name (its first label).
	Name string `yaml:"name"`
	// DataDir holds what the host keeps across restarts; default .convene.
	DataDir string `yaml:"data_dir"`
	// Platform groups hosts for management: status on
	// host.status.<platform>; default "default".
	Platform string `yaml:"platform"`
	// Bus is the resource the host answers management requests on;
	// default "bus" when the host has one. Without it, or with "none"
	// (NoBus), management is local.
	Bus ResourceRef `yaml:"bus"`
	// StatusInterval is how often the host publishes its status; default 5 s.
	StatusInterval time.Duration `yaml:"status_interval"`
}

// Section is an infrastructure entry, and the common part of a server's.
type Section struct {
	Name   string
	Plugin string
	// Path is the key path ("servers.api"), Line its line.
	Path string
	Line int
	node *yaml.Node // the plugin's own keys, nil when none
}

// ServerSection is a server entry.
type ServerSection struct {
	Section
	Deployment Deployment
	Components []*ComponentSection
}

// ComponentSection is one component a server loads.
type ComponentSection struct {
	// Name is the component's registered name; Plugin the plugin that
	// provides it; Ref what the file wrote.
	Name, Plugin, Ref string
	Path              string
	Line              int
	node              *yaml.Node
}

// ChannelSection is a channel entry; Kind is the deployment it gets
// (its own, else that of the servers naming it, else local).
type ChannelSection struct {
	ChannelConfig
	Name string
	Kind DeploymentType
	Path string
	Line int
}

// ChannelConfig is a channel's keys.
type ChannelConfig struct {
	Deployment Deployment `yaml:"deployment"`
	// Capacity bounds the channel's queue (and, distributed, what one
	// host accepts before it refuses more); default 64.
	Capacity int `yaml:"capacity"`
	// Subject and Queue are the bus subject and queue group of a
	// distributed channel; default channel.<name> and <name>.
	Subject string `yaml:"subject"`
	Queue   string `yaml:"queue"`
	// Bus is the resource a distributed channel travels on; default "bus".
	Bus ResourceRef `yaml:"bus"`
}

// Deployment says whether something runs in one process or over the bus.
type Deployment struct {
	Type DeploymentType `yaml:"type"`
}

// DeploymentType is local or distributed.
type DeploymentType string

// The deployment types.
const (
	Local       DeploymentType = "local"
	Distributed DeploymentType = "distributed"
)

// NoBus, as host.bus, keeps a host's management local though it has a
// bus: it answers no one on it.
const NoBus ResourceRef = "none"

// Topology is the topology: node, passed as it is to whoever reads it.
type Topology struct {
	// File is where it was read from ("" when inline or absent).
	File string
	// Node is the topology document; nil when the host file has none.
	Node *yaml.Node
}

var (
	namePattern  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	notNameChar  = regexp.MustCompile(`[^A-Za-z0-9_-]`)
	yamlErrLine  = regexp.MustCompile(`^line (\d+): (.*)$`)
	topLevelKeys = []string{"channels", "host", "infrastructure", "servers", "topology"}
)

// Load reads and checks a host file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("host: read the host file: %w", err)
	}
	return Parse(path, data)
}

// Parse checks a host file's content; name is what errors call it. Every
// mistake is reported at once, as ConfigErrors.
func Parse(name string, data []byte) (*File, error) { return parse(plugins, name, data) }

func parse(reg *registry, name string, data []byte) (*File, error) {
	p := newProblems(name)
	f := &File{Path: name}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 0
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlErrLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		p.add(line, "", "not YAML: "+msg, "fix the syntax at that line")
		return nil, p.err()
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		p.add(1, "", "the host file is empty or not a mapping", "start it with host:, infrastructure:, servers:, channels: and topology: sections")
		return nil, p.err()
	}
	root := doc.Content[0]
	if checkDuplicates(root, "", p); len(p.list) > 0 {
		return nil, p.err()
	}
	var servers, channels, infra *yaml.Node
	eachPair(root, func(k, v *yaml.Node) {
		p.saw(k.Line, k.Value)
		switch k.Value {
		case "host":
			decodeStrict(v, &f.Host, "host", p)
		case "infrastructure":
			infra = v
		case "servers":
			servers = v
		case "channels":
			channels = v
		case "topology":
			f.Topology = readTopology(name, v, p)
		default:
			p.add(k.Line, k.Value, "unknown section", unknownFix(k.Value, topLevelKeys))
		}
	})
	f.hostDefaults(p)
	f.Infrastructure = parseInfrastructure(reg, infra, p)
	f.Channels = parseChannels(channels, p)
	f.Servers = parseServers(reg, servers, p)
	f.crossCheck(reg, p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// checkDuplicates refuses a key written twice in one mapping: YAML would
// keep the last silently.
func checkDuplicates(node *yaml.Node, path string, p *problems) {
	switch node.Kind {
	case yaml.MappingNode:
		first := map[string]int{}
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			kp := join(path, k.Value)
			if line, dup := first[k.Value]; dup && k.Value != "<<" {
				p.add(k.Line, kp, fmt.Sprintf("written twice (first at line %d)", line), "keep one")
			}
			first[k.Value] = k.Line
			checkDuplicates(v, kp, p)
		}
	case yaml.SequenceNode:
		for i, item := range node.Content {
			checkDuplicates(item, fmt.Sprintf("%s[%d]", path, i), p)
		}
	}
}

func (f *File) hostDefaults(p *problems) {
	h := &f.Host
	if h.Name == "" {
		n, _ := os.Hostname()
		n, _, _ = strings.Cut(n, ".")
		h.Name = notNameChar.ReplaceAllString(n, "-")
	}
	if !namePattern.MatchString(h.Name) {
		p.add(p.lineOf("host.name"), "host.name", fmt.Sprintf("%q is not a host name", h.Name), "use 1 to 64 letters, digits, '-' or '_'")
	}
	if h.DataDir == "" {
		h.DataDir = ".convene"
	}
	if h.Platform == "" {
		h.Platform = "default"
	}
	if !namePattern.MatchString(h.Platform) {
		p.add(p.lineOf("host.platform"), "host.platform", fmt.Sprintf("%q is not a platform name", h.Platform), "use 1 to 64 letters, digits, '-' or '_'")
	}
	if h.StatusInterval <= 0 {
		h.StatusInterval = 5 * time.Second
	}
}

// lineOf is the line of a key path seen so far, or 0.
func (p *problems) lineOf(path string) int { return p.at[path] }

// named walks a mapping of named entries (servers, channels,
// infrastructure), checking each name.
func named(section string, node *yaml.Node, p *problems, f func(name, path string, k, v *yaml.Node)) {
	if node == nil || (node.Kind == yaml.ScalarNode && node.Tag == "!!null") {
		return
	}
	if node.Kind != yaml.MappingNode {
		p.add(node.Line, section, "expected a mapping of names to entries", "write each entry as name: {plugin: ...}")
		return
	}
	eachPair(node, func(k, v *yaml.Node) {
		path := section + "." + k.Value
		p.saw(k.Line, path)
		if !namePattern.MatchString(k.Value) {
			p.add(k.Line, path, fmt.Sprintf("%q is not a name", k.Value), "use 1 to 64 letters, digits, '-' or '_'")
			return
		}
		for v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		if v.Kind != yaml.MappingNode {
			p.add(v.Line, path, "expected a mapping", "write it as {plugin: <plugin ID>, ...}")
			return
		}
		f(k.Value, path, k, v)
	})
}

// splitSection takes the plugin: key and the host's own keys out of an
// entry, leaving the plugin's keys in a node of their own.
func splitSection(path string, v *yaml.Node, hostKeys []string, p *problems) (plugin string, own map[string]*yaml.Node, rest *yaml.Node) {
	own = map[string]*yaml.Node{}
	rest = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: v.Line, Column: v.Column}
	eachPair(v, func(k, val *yaml.Node) {
		switch {
		case k.Value == "plugin":
			p.saw(k.Line, path+".plugin")
			if val.Kind != yaml.ScalarNode || val.Value == "" {
				p.add(val.Line, path+".plugin", "expected a plugin ID", "write plugin: <ID>; convene host plugins lists them")
				return
			}
			plugin = val.Value
		case contains(hostKeys, k.Value):
			p.saw(k.Line, path+"."+k.Value)
			own[k.Value] = val
		default:
			rest.Content = append(rest.Content, k, val)
		}
	})
	if plugin == "" && !p.hasAt(path+".plugin") {
		p.add(v.Line, path, "no plugin", "add plugin: <ID>; convene host plugins lists them")
	}
	if len(rest.Content) == 0 {
		rest = nil
	}
	return plugin, own, rest
}

func (p *problems) hasAt(path string) bool {
	for _, e := range p.list {
		if e.Path == path {
			return true
		}
	}
	return false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// plugin resolves a plugin ID written at path.
func resolvePlugin(reg *registry, id, path string, line int, p *problems) (Plugin, bool) {
	if id == "" {
		return Plugin{}, false
	}
	pl, ok := reg.get(id)
	if !ok {
		p.add(line, path+".plugin", fmt.Sprintf("unknown plugin %q", id),
			fixOr(suggest(id, reg.ids()), "convene host plugins lists the plugins this binary has"))
		return Plugin{}, false
	}
	return pl, true
}

func parseInfrastructure(reg *registry, node *yaml.Node, p *problems) []*Section {
	var out []*Section
	named("infrastructure", node, p, func(name, path string, k, v *yaml.Node) {
		id, _, rest := splitSection(path, v, nil, p)
		s := &Section{Name: name, Plugin: id, Path: path, Line: k.Line, node: rest}
		out = append(out, s)
		line := p.lineOf(path + ".plugin")
		if line == 0 {
			line = k.Line
		}
		pl, ok := resolvePlugin(reg, id, path, line, p)
		if !ok {
			return
		}
		if pl.Server == nil {
			p.add(k.Line, path+".plugin", fmt.Sprintf("plugin %s provides no server, so no resource", id), "name an infrastructure plugin (convene.bus.nats, convene.store.redis, ...)")
			return
		}
		if _, ok := pl.Server().(Provider); !ok {
			p.add(k.Line, path+".plugin", fmt.Sprintf("plugin %s provides no resource", id), "move it under servers:, or name an infrastructure plugin")
			return
		}
		decodeConfig(pl.Config, rest, path, p)
	})
	return out
}

func parseChannels(node *yaml.Node, p *problems) []*ChannelSection {
	var out []*ChannelSection
	named("channels", node, p, func(name, path string, k, v *yaml.Node) {
		c := &ChannelSection{Name: name, Path: path, Line: k.Line}
		decodeStrict(v, &c.ChannelConfig, path, p)
		checkDeployment(c.Deployment, path+".deployment", p)
		if c.Capacity < 0 {
			p.add(p.lineOf(path+".capacity"), path+".capacity", "a negative capacity", "give the number of messages the queue holds (default 64)")
		}
		if c.Capacity == 0 {
			c.Capacity = 64
		}
		out = append(out, c)
	})
	return out
}

func checkDeployment(d Deployment, path string, p *problems) {
	switch d.Type {
	case "", Local, Distributed:
	default:
		p.add(p.lineOf(path+".type"), path+".type", fmt.Sprintf("unknown deployment type %q", d.Type),
			fixOr(suggest(string(d.Type), []string{string(Local), string(Distributed)}), "use local or distributed"))
	}
}

func parseServers(reg *registry, node *yaml.Node, p *problems) []*ServerSection {
	var out []*ServerSection
	named("servers", node, p, func(name, path string, k, v *yaml.Node) {
		id, own, rest := splitSection(path, v, []string{"components", "deployment"}, p)
		s := &ServerSection{Section: Section{Name: name, Plugin: id, Path: path, Line: k.Line, node: rest}}
		out = append(out, s)
		if d := own["deployment"]; d != nil {
			decodeStrict(d, &s.Deployment, path+".deployment", p)
			checkDeployment(s.Deployment, path+".deployment", p)
		}
		line := p.lineOf(path + ".plugin")
		if line == 0 {
			line = k.Line
		}
		pl, ok := resolvePlugin(reg, id, path, line, p)
		if ok && pl.Server == nil {
			p.add(line, path+".plugin", fmt.Sprintf("plugin %s provides no server, only components (%s)", id, strings.Join(keysOf(pl.Components), ", ")),
				"name a server plugin here and list its components under a server's components:")
			ok = false
		}
		if ok {
			decodeConfig(pl.Config, rest, path, p)
		}
		if c := own["components"]; c != nil {
			s.Components = parseComponents(reg, c, path+".components", p)
			if ok && len(s.Components) > 0 {
				if _, loads := pl.Server().(ComponentLoader); !loads {
					p.add(c.Line, path+".components", fmt.Sprintf("the server of %s takes no components", id), "remove components: from this server")
				}
			}
		}
	})
	return out
}

func parseComponents(reg *registry, node *yaml.Node, path string, p *problems) []*ComponentSection {
	if node.Kind != yaml.SequenceNode {
		p.add(node.Line, path, "expected a list", "write components: [name, {component: plugin/name, config: {...}}]")
		return nil
	}
	var out []*ComponentSection
	seen := map[string]bool{}
	for i, item := range node.Content {
		ip := fmt.Sprintf("%s[%d]", path, i)
		p.saw(item.Line, ip)
		c := &ComponentSection{Path: ip, Line: item.Line}
		switch item.Kind {
		case yaml.ScalarNode:
			c.Ref = item.Value
		case yaml.MappingNode:
			eachPair(item, func(k, v *yaml.Node) {
				switch k.Value {
				case "component":
					p.saw(k.Line, ip+".component")
					c.Ref = v.Value
				case "config":
					c.node = v
				default:
					p.add(k.Line, join(ip, k.Value), "unknown key", unknownFix(k.Value, []string{"component", "config"}))
				}
			})
		default:
			p.add(item.Line, ip, "expected a component name or {component: ..., config: ...}", "write the component's name")
			continue
		}
		if c.Ref == "" {
			p.add(item.Line, ip, "no component named", "add component: <plugin>/<name>")
			continue
		}
		id, name, info, err := reg.component(c.Ref)
		if err != nil {
			var he *hintError
			if errors.As(err, &he) {
				p.add(item.Line, ip, he.problem, he.fix)
			} else {
				p.add(item.Line, ip, err.Error(), "")
			}
			continue
		}
		c.Plugin, c.Name = id, name
		if seen[id+"/"+name] {
			p.add(item.Line, ip, fmt.Sprintf("component %s/%s is listed twice", id, name), "list it once")
			continue
		}
		seen[id+"/"+name] = true
		cp := ip
		if c.node != nil {
			cp = ip + ".config"
		}
		decodeConfig(info.Config, c.node, cp, p)
		out = append(out, c)
	}
	return out
}

// decodeConfig decodes a plugin's section into a fresh configuration
// with its defaults; nil config: the section must be empty.
func decodeConfig(config func() any, node *yaml.Node, path string, p *problems) any {
	if config == nil {
		if node != nil {
			eachPair(node, func(k, _ *yaml.Node) {
				p.add(k.Line, join(path, k.Value), "unknown key", "remove it: this plugin takes no configuration")
			})
		}
		return nil
	}
	cfg := config()
	decodeStrict(node, cfg, path, p)
	return cfg
}

// readTopology takes the topology: node: a path, {file: path}, or inline.
func readTopology(hostFile string, v *yaml.Node, p *problems) Topology {
	file := ""
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag != "!!null":
		file = v.Value
	case v.Kind == yaml.MappingNode && len(v.Content) == 2 && v.Content[0].Value == "file":
		file = v.Content[1].Value
	case v.Kind == yaml.MappingNode:
		return Topology{Node: v}
	default:
		return Topology{}
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(filepath.Dir(hostFile), file)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		p.add(v.Line, "topology", fmt.Sprintf("cannot read the topology file %s", file), "give its path, relative to the host file's directory ("+err.Error()+")")
		return Topology{}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p.add(v.Line, "topology", fmt.Sprintf("the topology file %s is not YAML: %s", file, err), "fix it")
		return Topology{}
	}
	t := Topology{File: file}
	if len(doc.Content) > 0 {
		t.Node = doc.Content[0]
	}
	return t
}

// crossCheck checks what one section says of another: references to
// channels and resources, and distributed deployments' bus.
func (f *File) crossCheck(reg *registry, p *problems) {
	resources := map[string]bool{}
	for _, s := range f.Infrastructure {
		resources[s.Name] = true
	}
	channels := map[string]*ChannelSection{}
	for _, c := range f.Channels {
		channels[c.Name] = c
	}
	// An infrastructure entry may use those above it: they start in order.
	above := map[string]bool{}
	for _, s := range f.Infrastructure {
		if pl, ok := reg.get(s.Plugin); ok && pl.Config != nil {
			quiet := newProblems(f.Path)
			for _, r := range findRefs(decodeConfig(pl.Config, s.node, s.Path, quiet), s.Path) {
				line := p.lineOf(r.path)
				if line == 0 {
					line = s.Line
				}
				switch {
				case r.channel:
					p.add(line, r.path, "infrastructure uses no channel", "remove it")
				case !resources[r.name]:
					p.add(line, r.path, fmt.Sprintf("no infrastructure resource %q", r.name), f.resourceFix(r.name))
				case !above[r.name]:
					p.add(line, r.path, fmt.Sprintf("resource %q is declared after %s, and starts after it", r.name, s.Name), "move "+r.name+" above "+s.Name+" under infrastructure:")
				}
			}
		}
		above[s.Name] = true
	}
	if f.Host.Bus != "" && f.Host.Bus != NoBus && !resources[string(f.Host.Bus)] {
		p.add(p.lineOf("host.bus"), "host.bus", fmt.Sprintf("no infrastructure resource %q", f.Host.Bus), f.resourceFix(string(f.Host.Bus)))
	}
	// The deployment each channel gets from the servers that name it.
	wanted := map[string]map[DeploymentType][]string{}
	for _, s := range f.Servers {
		for _, r := range f.refsOf(reg, s) {
			line := p.lineOf(r.path)
			if line == 0 {
				line = s.Line
			}
			switch {
			case r.channel && channels[r.name] == nil:
				p.add(line, r.path, fmt.Sprintf("no channel %q", r.name), f.channelFix(r.name))
			case r.channel && s.Deployment.Type != "":
				if wanted[r.name] == nil {
					wanted[r.name] = map[DeploymentType][]string{}
				}
				wanted[r.name][s.Deployment.Type] = append(wanted[r.name][s.Deployment.Type], s.Path)
			case !r.channel && !resources[r.name]:
				p.add(line, r.path, fmt.Sprintf("no infrastructure resource %q", r.name), f.resourceFix(r.name))
			}
		}
		if s.Deployment.Type == Distributed && !resources["bus"] {
			p.add(p.lineOf(s.Path+".deployment.type"), s.Path+".deployment.type", "distributed, and the host has no bus resource \"bus\"",
				"add infrastructure: {bus: {plugin: convene.bus.nats, ...}}, or make it deployment: {type: local}")
		}
	}
	for _, c := range f.Channels {
		c.Kind = c.Deployment.Type
		if c.Kind == "" {
			kinds := keysOf(wanted[c.Name])
			switch len(kinds) {
			case 0:
				c.Kind = Local
			case 1:
				c.Kind = DeploymentType(kinds[0])
			default:
				w := wanted[c.Name]
				p.add(c.Line, c.Path, fmt.Sprintf("servers want it both local (%s) and distributed (%s)", strings.Join(w[Local], ", "), strings.Join(w[Distributed], ", ")),
					"give the channel its own deployment: {type: ...}")
			}
		}
		switch c.Kind {
		case Distributed:
		case Local:
			for _, k := range []string{"subject", "queue", "bus"} {
				if l := p.lineOf(c.Path + "." + k); l > 0 {
					p.add(l, c.Path+"."+k, "only a distributed channel has a "+k, "remove it, or make the channel deployment: {type: distributed}")
				}
			}
			continue
		default:
			continue // refused already
		}
		if c.Bus == "" {
			c.Bus = "bus"
		}
		if c.Subject == "" {
			c.Subject = "channel." + c.Name
		}
		if c.Queue == "" {
			c.Queue = c.Name
		}
		if !resources[string(c.Bus)] {
			p.add(c.Line, c.Path, fmt.Sprintf("distributed, and the host has no bus resource %q", c.Bus),
				"add infrastructure: {"+string(c.Bus)+": {plugin: convene.bus.nats, ...}}, or make it deployment: {type: local}")
		}
	}
	if f.Host.Bus == "" && resources["bus"] {
		f.Host.Bus = "bus"
	}
}

// refsOf decodes a server's configuration, and those of its components,
// again to list the references they make (defaults included).
func (f *File) refsOf(reg *registry, s *ServerSection) []refUse {
	var out []refUse
	quiet := newProblems(f.Path)
	if pl, ok := reg.get(s.Plugin); ok && pl.Config != nil {
		out = append(out, findRefs(decodeConfig(pl.Config, s.node, s.Path, quiet), s.Path)...)
	}
	for _, c := range s.Components {
		if pl, ok := reg.get(c.Plugin); ok && pl.Components[c.Name].Config != nil {
			path := c.Path
			if c.node != nil {
				path += ".config"
			}
			out = append(out, findRefs(decodeConfig(pl.Components[c.Name].Config, c.node, path, quiet), path)...)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

func (f *File) channelFix(name string) string {
	var names []string
	for _, c := range f.Channels {
		names = append(names, c.Name)
	}
	if s := suggest(name, names); s != "" {
		return fmt.Sprintf("did you mean %q? or declare it under channels:", s)
	}
	return fmt.Sprintf("declare it: channels: {%s: {deployment: {type: local}}}", name)
}

func (f *File) resourceFix(name string) string {
	var names []string
	for _, s := range f.Infrastructure {
		names = append(names, s.Name)
	}
	if s := suggest(name, names); s != "" {
		return fmt.Sprintf("did you mean %q? or declare it under infrastructure:", s)
	}
	return fmt.Sprintf("declare it: infrastructure: {%s: {plugin: <ID>, ...}}", name)
}
