package host

// Instance is the current instance of the server or infrastructure entry
// named name, for the program that runs the host to reach what it runs
// (its tests, drills, benchmarks): nil and false while it has none (its
// plugin is stopped, or the host is not running). A fresh instance
// replaces it each time its plugin starts again.
func (h *Host) Instance(name string) (any, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, list := range [][]*slot{h.infra, h.servers} {
		for _, s := range list {
			if s.name == name && s.inst != nil && s.state == StateRunning {
				return s.inst, true
			}
		}
	}
	return nil, false
}

// Defaults is the configuration a registered plugin's server starts from
// (its Config with the defaults filled in), for a program that shows it;
// nil when the plugin is not registered or its server takes no keys.
func Defaults(id string) any {
	p, ok := plugins.get(id)
	if !ok || p.Config == nil {
		return nil
	}
	return p.Config()
}

// IsInfrastructure reports whether a registered plugin's server provides
// a resource: it goes under infrastructure: in a host file.
func IsInfrastructure(id string) bool {
	p, ok := plugins.get(id)
	if !ok || p.Server == nil {
		return false
	}
	_, is := p.Server().(Provider)
	return is
}
