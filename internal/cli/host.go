package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/convene/convene/internal/api"
	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/host"

	// Every plugin this binary has registers itself with the host.
	_ "github.com/convene/convene/internal/alarms"
	_ "github.com/convene/convene/internal/breakout"
	"github.com/convene/convene/internal/bus/busplugin"
	_ "github.com/convene/convene/internal/medianode"
	_ "github.com/convene/convene/internal/platform"
	_ "github.com/convene/convene/internal/records"
	_ "github.com/convene/convene/internal/registry"
	_ "github.com/convene/convene/internal/resources"
	_ "github.com/convene/convene/internal/scheduler"
	_ "github.com/convene/convene/internal/store"
)

func init() { register(hostCmd) }

func hostCmd() *cobra.Command {
	var (
		file     string
		logLevel string
		pprofAt  string
	)
	cmd := &cobra.Command{
		Use:   "host",
		Short: "Run a host: the servers a host file names (any subset of Convene's plugins)",
		Long: `Run one host: read the host file given with --config and run the servers it
names, each built from a plugin with its section of the file, and the
infrastructure they share (bus, store, records). convene serve is one host
with every plugin; a split deployment (deploy/split/) spreads the same
servers over several hosts joined by NATS and Redis.

convene host plugins lists the plugins this binary has and their keys;
convene host stop|start PLUGIN acts on a running host through the API.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("give the host file with --config FILE (deploy/split/ has examples; convene host plugins lists the plugins)")
			}
			tuneGC()
			log := newLogger(os.Stderr, logLevel)
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			h, err := host.Open(file, host.Options{Log: log, Metrics: reg})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if pprofAt != "" {
				at, stop, err := startPprof(pprofAt, log)
				if err != nil {
					return err
				}
				defer stop()
				fmt.Fprintf(out, "  pprof:  http://%s/debug/pprof/ (this machine only)\n", at)
			}
			ctx := cmd.Context()
			if err := h.Start(ctx); err != nil {
				return err
			}
			printHost(out, h)
			<-ctx.Done()
			fmt.Fprintln(out, "shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return h.Stop(sctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "the host file (YAML): host, infrastructure, servers, channels, topology")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&pprofAt, "pprof", "", "serve Go's profiles (/debug/pprof/) on this loopback address; default none")
	cmd.AddCommand(hostPluginsCmd(), hostStatusCmd(), hostActionCmd(host.ActionStop), hostActionCmd(host.ActionStart))
	return cmd
}

// printHost says what the host runs and where to reach it.
func printHost(out io.Writer, h *host.Host) {
	st := h.Status(context.Background())
	f := h.File()
	fmt.Fprintf(out, "Convene host %s is running (platform %s, data in %s)\n", st.Host, st.Platform, f.Host.DataDir)
	for _, s := range st.Infrastructure {
		line := fmt.Sprintf("  %-10s %s", s.Name+":", s.Plugin)
		if v, ok := h.Instance(s.Name); ok {
			if b, ok := v.(*busplugin.Server); ok && b.Provider() != nil {
				if u := b.Provider().URL(); u != "" {
					line += " at " + bus.RedactURL(u)
				}
			}
		}
		fmt.Fprintln(out, line)
	}
	for _, s := range st.Servers {
		line := fmt.Sprintf("  %-10s %s", s.Name+":", s.Plugin)
		if v, ok := h.Instance(s.Name); ok {
			if a, ok := v.(*api.PluginServer); ok && a.Server() != nil {
				line += " on http://" + a.Server().Addr()
			}
		}
		fmt.Fprintln(out, line)
	}
}

func hostPluginsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "plugins",
		Short: "List every plugin this binary has, with what it provides and its keys' defaults",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "PLUGIN\tPROVIDES\tWHAT")
			for _, p := range host.Registered() {
				fmt.Fprintf(w, "%s\t%s\t%s\n", p.ID, provides(p), p.Doc)
				if d := host.Defaults(p.ID); d != nil {
					keys, err := flowYAML(d)
					if err != nil {
						return err
					}
					fmt.Fprintf(w, "\t\tkeys: %s\n", keys)
				}
			}
			return w.Flush()
		},
	}
}

// provides says what a plugin gives a host file.
func provides(p host.PluginInfo) string {
	var parts []string
	switch {
	case host.IsInfrastructure(p.ID):
		parts = append(parts, "resource (infrastructure:)")
	case p.Server:
		parts = append(parts, "server (servers:)")
	}
	if len(p.Components) > 0 {
		parts = append(parts, "components "+strings.Join(p.Components, ", "))
	}
	return strings.Join(parts, "; ")
}

// flowYAML is v as one line of YAML.
func flowYAML(v any) (string, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return "", err
	}
	var flow func(*yaml.Node)
	flow = func(n *yaml.Node) {
		n.Style |= yaml.FlowStyle
		for _, c := range n.Content {
			flow(c)
		}
	}
	flow(&n)
	data, err := yaml.Marshal(&n)
	return strings.TrimSpace(string(data)), err
}

func hostStatusCmd() *cobra.Command {
	var conn *apiConn
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every host the API knows of: its plugins, servers and their health",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			hosts, err := c.Hosts(cmd.Context())
			if err != nil {
				return conn.fail(err)
			}
			out := cmd.OutOrStdout()
			for _, h := range hosts {
				printHostStatus(out, h)
			}
			return nil
		},
	}
	conn = withAPIClient(cmd)
	return cmd
}

func printHostStatus(out io.Writer, h apiclient.HostStatus) {
	fmt.Fprintf(out, "host %s (platform %s)\n", printable(h.Host), printable(h.Platform))
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, p := range h.Plugins {
		line := fmt.Sprintf("  plugin\t%s\t%s", printable(p.ID), p.State)
		if p.Error != "" {
			line += "\t" + printable(p.Error)
		}
		fmt.Fprintln(w, line)
	}
	for _, s := range append(slices.Clone(h.Infrastructure), h.Servers...) {
		line := fmt.Sprintf("  %s\t%s\t%s", printable(s.Name), printable(s.Plugin), s.State)
		if s.Health != "" {
			line += "\t" + printable(s.Health)
		}
		if s.Error != "" {
			line += "\t" + printable(s.Error)
		}
		fmt.Fprintln(w, line)
	}
	_ = w.Flush()
}

func hostActionCmd(action string) *cobra.Command {
	var (
		conn *apiConn
		name string
	)
	verb := map[string]string{host.ActionStop: "Stop", host.ActionStart: "Start"}[action]
	cmd := &cobra.Command{
		Use:   action + " PLUGIN",
		Short: verb + " a plugin on a running host, through the API (the rest of the host runs on)",
		Long: verb + ` a plugin on a running host, through the API at --api. Without --host,
the host is the one the API knows that runs the plugin; name it when several do.
While a plugin is stopped, what it served answers 503 PLUGIN_STOPPED.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plugin := args[0]
			if !host.ValidID(plugin) {
				return fmt.Errorf("%q is not a plugin ID (convene.breakout): convene host plugins lists them", plugin)
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if name == "" {
				if name, err = hostOf(ctx, c, plugin); err != nil {
					return conn.fail(err)
				}
			}
			var st apiclient.HostStatus
			if action == host.ActionStop {
				st, err = c.StopPlugin(ctx, name, plugin)
			} else {
				st, err = c.StartPlugin(ctx, name, plugin)
			}
			if err != nil {
				return conn.fail(err)
			}
			p, _ := st.Plugin(plugin)
			fmt.Fprintf(cmd.OutOrStdout(), "plugin %s is %s on host %s\n", plugin, p.State, printable(st.Host))
			printHostStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	conn = withAPIClient(cmd)
	cmd.Flags().StringVar(&name, "host", "", "the host to act on (default: the one the API knows that runs the plugin)")
	return cmd
}

// hostOf is the one host the API knows of that runs plugin.
func hostOf(ctx context.Context, c *apiclient.Client, plugin string) (string, error) {
	hosts, err := c.Hosts(ctx)
	if err != nil {
		return "", err
	}
	var names []string
	for _, h := range hosts {
		if _, ok := h.Plugin(plugin); ok {
			names = append(names, h.Host)
		}
	}
	switch len(names) {
	case 1:
		return names[0], nil
	case 0:
		return "", fmt.Errorf("no host the API knows of runs %s: convene host status lists what runs where", plugin)
	}
	return "", fmt.Errorf("hosts %s run %s: name one with --host", strings.Join(names, ", "), plugin)
}
