package host

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Plugin is what a Go package registers at init: at most one server and
// any number of components (seed 004: a bundle). Every instance the host
// makes of them gets its own configuration, decoded strictly from the host
// file into the struct Config returns.
type Plugin struct {
	// ID is dotted, lowercase: "convene.scheduler", "convene.bus.nats".
	ID string
	// Doc says in a few words what the plugin provides (convene host
	// plugins).
	Doc string
	// Server makes a new, unprovisioned server; nil when the plugin
	// provides none. It must be cheap and touch nothing outside the value.
	Server func() Server
	// Config returns a pointer to a new struct holding the server's
	// configuration with its defaults filled in: the one place they live.
	// The host decodes the server's section of the host file into it,
	// strictly, and hands it to Provision. Nil: the server takes no keys.
	Config func() any
	// Components are the components the plugin provides, by name.
	Components map[string]ComponentInfo
}

// ComponentInfo says how to make one of a plugin's components.
type ComponentInfo struct {
	// New makes a new, unprovisioned component.
	New func() Component
	// Config, like Plugin.Config, returns the component's configuration
	// with its defaults; nil: it takes none.
	Config func() any
	// Doc says what the component does.
	Doc string
}

// PluginInfo describes a registered plugin (Registered).
type PluginInfo struct {
	ID         string   `json:"id"`
	Doc        string   `json:"doc,omitempty"`
	Server     bool     `json:"server"`
	Components []string `json:"components,omitempty"`
}

// Keys of a server's section the host reads itself; a plugin's
// configuration cannot use them.
var reservedServerKeys = []string{"plugin", "components", "deployment"}

var (
	idSegment = `[a-z0-9_-]+`
	idPattern = regexp.MustCompile(`^` + idSegment + `(\.` + idSegment + `)+$`)
	// A component's name is one or more segments: "placement.least-loaded".
	componentPattern = regexp.MustCompile(`^` + idSegment + `(\.` + idSegment + `)*$`)
)

// ValidID reports whether id is a plugin ID: at least two lowercase
// segments of letters, digits, '_' or '-', joined by dots.
func ValidID(id string) bool { return idPattern.MatchString(id) }

type registry struct {
	mu      sync.RWMutex
	plugins map[string]Plugin
}

func newRegistry() *registry { return &registry{plugins: map[string]Plugin{}} }

// plugins is the repository of every plugin compiled into the binary.
var plugins = newRegistry()

// Register adds a plugin to the repository. It panics, at init, on an
// invalid or duplicate ID, a plugin that provides nothing, a component
// name that is not dotted lowercase, or a Config that does not return a
// pointer to a struct (or uses a key the host reserves).
func Register(p Plugin) { plugins.register(p) }

// Registered lists every registered plugin, sorted by ID.
func Registered() []PluginInfo { return plugins.list() }

func (r *registry) register(p Plugin) {
	if err := checkPlugin(p); err != nil {
		panic("host: Register: " + err.Error())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.plugins[p.ID]; dup {
		panic(fmt.Sprintf("host: Register: plugin %s is already registered: every plugin ID is registered once", p.ID))
	}
	r.plugins[p.ID] = p
}

func checkPlugin(p Plugin) error {
	if !ValidID(p.ID) {
		return fmt.Errorf("plugin ID %q: use at least two lowercase segments of a-z, 0-9, '_' or '-' joined by dots (convene.scheduler)", p.ID)
	}
	if p.Server == nil && len(p.Components) == 0 {
		return fmt.Errorf("plugin %s provides neither a server nor a component", p.ID)
	}
	if p.Server == nil && p.Config != nil {
		return fmt.Errorf("plugin %s: Config is for its server, and it provides none", p.ID)
	}
	if err := checkConfigType(p.Config, reservedServerKeys); err != nil {
		return fmt.Errorf("plugin %s: %w", p.ID, err)
	}
	for name, c := range p.Components {
		if !componentPattern.MatchString(name) {
			return fmt.Errorf("plugin %s: component name %q: use lowercase segments of a-z, 0-9, '_' or '-' joined by dots", p.ID, name)
		}
		if c.New == nil {
			return fmt.Errorf("plugin %s: component %s has no New", p.ID, name)
		}
		if err := checkConfigType(c.Config, nil); err != nil {
			return fmt.Errorf("plugin %s: component %s: %w", p.ID, name, err)
		}
	}
	return nil
}

// checkConfigType makes sure a Config function returns a pointer to a
// struct none of whose keys is reserved.
func checkConfigType(f func() any, reserved []string) error {
	if f == nil {
		return nil
	}
	v := f()
	t := reflect.TypeOf(v)
	if v == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct || reflect.ValueOf(v).IsNil() {
		return fmt.Errorf("Config must return a non-nil pointer to a struct, not %T", v)
	}
	for _, k := range structKeys(t.Elem()) {
		if slices.Contains(reserved, k) {
			return fmt.Errorf("Config uses the key %q, which the host reads itself", k)
		}
	}
	return nil
}

func (r *registry) get(id string) (Plugin, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, ok := r.plugins[id]
	return p, ok
}

func (r *registry) ids() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.plugins))
	for id := range r.plugins {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (r *registry) list() []PluginInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]PluginInfo, 0, len(r.plugins))
	for _, p := range r.plugins {
		pi := PluginInfo{ID: p.ID, Doc: p.Doc, Server: p.Server != nil}
		for name := range p.Components {
			pi.Components = append(pi.Components, name)
		}
		sort.Strings(pi.Components)
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// component finds a component by reference: "plugin.id/name", or a bare
// name that exactly one plugin provides. It returns the providing plugin's
// ID, the name and the info, or an error that says what to write instead.
func (r *registry) component(ref string) (string, string, ComponentInfo, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if id, name, ok := strings.Cut(ref, "/"); ok {
		p, found := r.plugins[id]
		if !found {
			return "", "", ComponentInfo{}, &hintError{fmt.Sprintf("no plugin %s is registered", id), fixOr(suggest(id, r.idsLocked()), "convene host plugins lists them")}
		}
		c, found := p.Components[name]
		if !found {
			return "", "", ComponentInfo{}, &hintError{fmt.Sprintf("plugin %s has no component %q", id, name), fixOr(suggest(name, keysOf(p.Components)), "it has "+strings.Join(keysOf(p.Components), ", "))}
		}
		return id, name, c, nil
	}
	var owners []string
	for id, p := range r.plugins {
		if _, ok := p.Components[ref]; ok {
			owners = append(owners, id)
		}
	}
	sort.Strings(owners)
	switch len(owners) {
	case 1:
		return owners[0], ref, r.plugins[owners[0]].Components[ref], nil
	case 0:
		var all []string
		for id, p := range r.plugins {
			for name := range p.Components {
				all = append(all, name, id+"/"+name)
			}
		}
		return "", "", ComponentInfo{}, &hintError{fmt.Sprintf("no registered plugin provides a component %q", ref), fixOr(suggest(ref, all), "convene host plugins lists them")}
	}
	return "", "", ComponentInfo{}, &hintError{fmt.Sprintf("component %q is provided by %s", ref, strings.Join(owners, " and ")), "name one as <plugin>/" + ref}
}

// hintError is a problem with what to do about it.
type hintError struct{ problem, fix string }

func (e *hintError) Error() string { return e.problem + "; " + e.fix }

// fixOr is "did you mean s?" when there is a suggestion, else otherwise.
func fixOr(s, otherwise string) string {
	if s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	return otherwise
}

func (r *registry) idsLocked() []string {
	out := make([]string, 0, len(r.plugins))
	for id := range r.plugins {
		out = append(out, id)
	}
	return out
}

func keysOf[K ~string, V any](m map[K]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, string(k))
	}
	sort.Strings(out)
	return out
}
