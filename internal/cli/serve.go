package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/stack"
)

func init() { register(serveCmd) }

func serveCmd() *cobra.Command {
	var (
		o        stack.Options
		cfgPath  string
		platform string
		dataDir  string
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a platform: bus, store, RMS, scheduler, registry, REST API (and simulated media nodes)",
		Long: `Run every service of one platform in this process.

With no flags it runs on embedded defaults: an in-process NATS server
(listening on 127.0.0.1:4222 for media nodes in other processes), an
in-process Redis-protocol store whose data is gone when the process ends,
and the built-in demo topology (platform plat-a, rooms room-a1 and room-a2,
tenant "demo").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGC()
			log := newLogger(os.Stderr, logLevel)
			cfg := config.Demo()
			if cfgPath != "" {
				var err error
				if cfg, err = config.Load(cfgPath); err != nil {
					return err
				}
			}
			if platform != "" {
				if _, ok := cfg.PlatformByMoid(platform); !ok {
					return fmt.Errorf("--platform %q is not in the configuration", platform)
				}
				cfg.Platform = platform
			}
			o.Config, o.Log, o.DataDir = cfg, log, dataDir
			ctx := cmd.Context()
			st, err := stack.Start(ctx, o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Convene is serving platform %s (%s)\n", cfg.Platform, cfg.Local().Name)
			fmt.Fprintf(out, "  API:    http://%s\n", st.API.Addr())
			if st.Token != "" {
				fmt.Fprintf(out, "  token:  %s\n", st.Token)
				if err := writeToken(dataDir, st.Token); err != nil {
					log.Warn("could not save the API token for the CLI", "err", err)
				} else {
					fmt.Fprintf(out, "          (saved to %s for the convene CLI)\n", filepath.Join(dataDir, "token"))
				}
			}
			if u := st.BusURL(); u != "" {
				fmt.Fprintf(out, "  bus:    %s (embedded NATS)\n", u)
			} else if o.NATS != "" {
				fmt.Fprintf(out, "  bus:    %s\n", o.NATS)
			}
			if o.Redis == "" {
				fmt.Fprintf(out, "  store:  embedded, in memory: its data is gone when this process ends (use --redis for a real one)\n")
			} else {
				fmt.Fprintf(out, "  store:  %s\n", o.Redis)
			}
			if o.SimNodes > 0 {
				fmt.Fprintf(out, "  nodes:  %d simulated media nodes\n", o.SimNodes)
			}
			fmt.Fprintf(out, "Try: convene conf create --name standup --domain %s --scale 8 --resolution 720p --duration 30\n", firstDomain(cfg))
			<-ctx.Done()
			fmt.Fprintln(out, "shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st.Stop(sctx)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "topology and tuning (YAML); default: the built-in demo topology")
	f.StringVar(&platform, "platform", "", "moid of the platform to serve (default: the configuration's)")
	f.StringVar(&o.Listen, "listen", "", "REST API address (default 127.0.0.1:8080)")
	f.StringVar(&o.Token, "api-token", os.Getenv("CONVENE_TOKEN"), "API bearer token (default: the configuration's, else a new random one)")
	f.StringVar(&o.NATS, "nats", "", "URL of an external NATS server (default: embedded)")
	f.StringVar(&o.NATSListen, "nats-listen", "127.0.0.1:4222", "where the embedded NATS server listens (\"none\": in-process only)")
	f.StringVar(&o.Redis, "redis", "", "URL of the platform's Redis store (default: embedded, ephemeral)")
	f.IntVar(&o.SimNodes, "sim-nodes", 0, "simulated media nodes to run in this process")
	f.IntVar(&o.SimCapacity, "sim-capacity", 1000, "conferences each simulated node can host")
	f.StringVar(&dataDir, "data-dir", ".convene", "where the CLI token and the rooms operators failed are kept")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func firstDomain(c *config.Config) string {
	for _, d := range c.Domains {
		if d.Platform == c.Platform {
			return d.Moid
		}
	}
	return "<domain>"
}

func writeToken(dir, token string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600)
}

// tuneGC trades memory for CPU: the control plane allocates briefly-lived
// messages at a high rate and the machine has memory to spare. GOGC in the
// environment wins.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}
