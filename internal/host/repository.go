package host

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// provisionServer makes fresh instances of a server and of its components
// whose plugins are not stopped. On failure every instance made here is
// cleaned up.
func (h *Host) provisionServer(s *slot) error {
	if err := h.provision(s); err != nil {
		return err
	}
	for _, c := range s.comps {
		if h.isStopped(c.plugin) {
			continue
		}
		if err := h.provision(c); err != nil {
			for _, d := range s.comps {
				_ = h.stop(context.Background(), d)
			}
			_ = h.stop(context.Background(), s)
			return err
		}
	}
	return nil
}

// startServer starts a provisioned server: its components first, each
// loaded into it once started, then the server. On failure everything of
// the server is stopped and cleaned up.
func (h *Host) startServer(ctx context.Context, s *slot) error {
	if !h.hasInstance(s) {
		return nil // its plugin is stopped
	}
	for _, c := range s.comps {
		if !h.hasInstance(c) {
			continue
		}
		if err := h.loadComponent(ctx, c); err != nil {
			_ = h.stopServer(ctx, s)
			return err
		}
	}
	if err := h.start(ctx, s); err != nil {
		_ = h.stopServer(ctx, s)
		return err
	}
	return nil
}

// loadComponent starts a provisioned component and loads it into its
// server.
func (h *Host) loadComponent(ctx context.Context, c *slot) error {
	if err := h.start(ctx, c); err != nil {
		return err
	}
	h.mu.RLock()
	srv, inst := c.parent.inst, c.inst
	h.mu.RUnlock()
	if err := srv.(ComponentLoader).Load(c.name, inst); err != nil {
		err = fmt.Errorf("host %s: %s: server %s refused component %s/%s: %w", h.Name(), c.path, c.parent.name, c.plugin, c.name, err)
		_ = h.stop(ctx, c)
		h.set(c, StateFailed, err)
		return err
	}
	return nil
}

// unloadComponent takes a component out of its server, then stops it.
func (h *Host) unloadComponent(ctx context.Context, c *slot) error {
	h.mu.RLock()
	srv, loaded := c.parent.inst, c.state == StateRunning
	h.mu.RUnlock()
	if loaded && srv != nil {
		srv.(ComponentLoader).Unload(c.name)
	}
	return h.stop(ctx, c)
}

// stopServer stops a server, then its components (last first), cleans
// them up, then cleans the server up: the reverse of startServer.
func (h *Host) stopServer(ctx context.Context, s *slot) error {
	stopErr := h.halt(ctx, s)
	errs := []error{stopErr}
	for i := len(s.comps) - 1; i >= 0; i-- {
		errs = append(errs, h.stop(ctx, s.comps[i]))
	}
	errs = append(errs, h.discard(s, stopErr))
	return errors.Join(errs...)
}

func (h *Host) hasInstance(s *slot) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return s.inst != nil
}

func (h *Host) isStopped(plugin string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.stopped[plugin]
}

// pluginCheck says whether plugin can be stopped or started on this host.
func (h *Host) pluginCheck(plugin string) error {
	h.mu.RLock()
	running := h.running
	h.mu.RUnlock()
	if !running {
		return fmt.Errorf("%w: host %s", ErrNotRunning, h.Name())
	}
	for _, s := range h.infra {
		if s.plugin == plugin {
			return fmt.Errorf("%w: %s is the infrastructure of host %s (%s)", ErrInfrastructure, plugin, h.Name(), s.path)
		}
	}
	used := h.pluginsUsed()
	if !slices.Contains(used, plugin) {
		return fmt.Errorf("%w: host %s runs no %s%s (it runs %v)", ErrUnknownPlugin, h.Name(), plugin, didYouMean(plugin, used), used)
	}
	return nil
}

// pluginsUsed lists the plugins of the host's servers and components.
func (h *Host) pluginsUsed() []string {
	var out []string
	for _, s := range h.servers {
		for _, x := range append([]*slot{s}, s.comps...) {
			if !slices.Contains(out, x.plugin) {
				out = append(out, x.plugin)
			}
		}
	}
	slices.Sort(out)
	return out
}

// StopPlugin stops every instance of a plugin on this host while the rest
// runs: its components are unloaded from every server holding them and
// stopped, its servers (with their components) stopped, and all cleaned
// up. Until StartPlugin, its routes answer 503 PLUGIN_STOPPED. Stopping a
// stopped plugin does nothing.
func (h *Host) StopPlugin(ctx context.Context, plugin string) error {
	h.ops.Lock()
	defer h.ops.Unlock()
	if err := h.pluginCheck(plugin); err != nil {
		return err
	}
	h.mu.Lock()
	already := h.stopped[plugin]
	h.stopped[plugin] = true
	h.mu.Unlock()
	if already {
		return nil
	}
	h.log.Info("stopping plugin", "host", h.Name(), "plugin", plugin)
	var errs []error
	for _, s := range h.servers {
		if s.plugin == plugin {
			continue
		}
		for _, c := range s.comps {
			if c.plugin == plugin {
				errs = append(errs, h.unloadComponent(ctx, c))
			}
		}
	}
	for i := len(h.servers) - 1; i >= 0; i-- {
		if s := h.servers[i]; s.plugin == plugin {
			errs = append(errs, h.stopServer(ctx, s))
		}
	}
	h.notify()
	return errors.Join(errs...)
}

// StartPlugin starts fresh instances of a stopped plugin, from the same
// configuration: its servers (with the components of running plugins),
// and its components in every running server that lists them. If one
// fails, what was started here is stopped again, the plugin stays stopped
// with the error (Status), and the error wraps ErrPluginFailed. Starting
// a running plugin does nothing.
func (h *Host) StartPlugin(ctx context.Context, plugin string) error {
	h.ops.Lock()
	defer h.ops.Unlock()
	if err := h.pluginCheck(plugin); err != nil {
		return err
	}
	h.mu.Lock()
	if !h.stopped[plugin] {
		h.mu.Unlock()
		return nil
	}
	h.stopped[plugin], h.failed[plugin] = false, nil
	h.mu.Unlock()
	h.log.Info("starting plugin", "host", h.Name(), "plugin", plugin)
	err := h.startPlugin(ctx, plugin)
	if err != nil {
		h.mu.Lock()
		h.stopped[plugin], h.failed[plugin] = true, err
		h.mu.Unlock()
		err = fmt.Errorf("%w: %s on host %s: %w", ErrPluginFailed, plugin, h.Name(), err)
	}
	h.notify()
	return err
}

func (h *Host) startPlugin(ctx context.Context, plugin string) error {
	var servers, comps []*slot
	undo := func() {
		for i := len(comps) - 1; i >= 0; i-- {
			_ = h.unloadComponent(ctx, comps[i])
		}
		for i := len(servers) - 1; i >= 0; i-- {
			_ = h.stopServer(ctx, servers[i])
		}
	}
	for _, s := range h.servers {
		if s.plugin != plugin || h.isStopped(s.plugin) {
			continue
		}
		if err := h.provisionServer(s); err != nil {
			undo()
			return err
		}
		if err := h.startServer(ctx, s); err != nil {
			undo()
			return err
		}
		servers = append(servers, s)
	}
	for _, s := range h.servers {
		if s.plugin == plugin || !h.serving(s) {
			continue
		}
		for _, c := range s.comps {
			if c.plugin != plugin {
				continue
			}
			if err := h.provision(c); err != nil {
				undo()
				return err
			}
			if err := h.loadComponent(ctx, c); err != nil {
				undo()
				return err
			}
			comps = append(comps, c)
		}
	}
	return nil
}

// serving reports whether a server's instance runs.
func (h *Host) serving(s *slot) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return s.inst != nil && s.state == StateRunning
}
