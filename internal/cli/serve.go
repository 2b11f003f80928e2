package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/sip/sipplugin"
	"github.com/convene/convene/internal/stack"
	"github.com/convene/convene/internal/store"
)

func init() { register(serveCmd) }

func serveCmd() *cobra.Command {
	var (
		o          stack.Options
		cfgPath    string
		platform   string
		dataDir    string
		logLevel   string
		pprofAt    string
		recordsURL string
		sipListen  string
		acctListen string
		cdrListen  string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a platform: bus, store, RMS, scheduler, registry, REST API (and simulated media nodes)",
		Long: `Run every service of one platform in this process.

With no flags it runs on embedded defaults: an in-process NATS server
(listening on 127.0.0.1:4222 for media nodes in other processes, each
with its role's credential from <data-dir>/creds, e.g. mcu.creds), an
in-process Redis-protocol store that keeps its data in <data-dir>/store,
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
			if o.NATS == "" && (o.NATSCreds != "" || o.NATSTLS != (bus.TLSFiles{})) {
				return fmt.Errorf("--nats-creds and --nats-tls-* are for an external bus (--nats); the embedded bus writes its own credentials to %s", filepath.Join(dataDir, "creds"))
			}
			o.Config, o.Log, o.DataDir = cfg, log, dataDir
			o.Alarms = true  // process monitoring: GET /v1/alarms, kept in the records database when there is one
			o.Console = true // the operator console at / on the API's listener
			switch {
			case recordsURL == "none":
				o.Records = ""
			case recordsURL != "":
				o.Records = recordsURL
			case dataDir != "":
				o.Records = "sqlite://" + filepath.Join(dataDir, "records.db")
			}
			// The SIP edge writes its subscribers and call records to the
			// records database: with none, it stays off.
			sipOn := !strings.EqualFold(sipListen, "none") && o.Records != ""
			if sipOn {
				o.SimSIP = true
				for name, sec := range sipplugin.ServeSections(sipListen, acctListen, "") {
					o.Servers = append(o.Servers, stack.Server{Name: name, Section: sec})
				}
			}
			// The bank's own systems read the call records on their own
			// listener, with a token of their own kept in the data directory.
			cdrOn := sipOn && dataDir != "" && !strings.EqualFold(cdrListen, "none")
			cdrToken := filepath.Join(dataDir, "cdr-token")
			if cdrOn {
				if err := os.MkdirAll(dataDir, 0o700); err != nil {
					return err
				}
				if _, err := sipplugin.EnsureThirdPartyToken(cdrToken); err != nil {
					return err
				}
				o.Servers = append(o.Servers, stack.Server{Name: "cdr-thirdparty", Section: sipplugin.ThirdPartySection(cdrListen, cdrToken)})
			}
			slices.SortFunc(o.Servers, func(a, b stack.Server) int { return strings.Compare(a.Name, b.Name) })
			if pprofAt != "" {
				at, stop, err := startPprof(pprofAt, log)
				if err != nil {
					return err
				}
				defer stop()
				fmt.Fprintf(cmd.OutOrStdout(), "  pprof:  http://%s/debug/pprof/ (this machine only)\n", at)
			}
			ctx := cmd.Context()
			st, err := stack.Start(ctx, o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Convene is serving platform %s (%s)\n", cfg.Platform, cfg.Local().Name)
			fmt.Fprintf(out, "  API:    http://%s\n", st.API.Addr())
			if st.Token != "" {
				fmt.Fprintf(out, "  token:  %s (%s)\n", maskToken(st.Token), tokenRole(cfg, st.Token))
				if err := writeToken(dataDir, st.Token); err != nil {
					log.Warn("could not save the API token for the CLI: choose one with --api-token (or CONVENE_TOKEN) and restart", "err", err)
				} else {
					fmt.Fprintf(out, "          (saved to %s for the convene CLI)\n", filepath.Join(dataDir, "token"))
				}
			}
			if len(cfg.API.Tokens) > 0 {
				fmt.Fprintf(out, "  tokens: %s from the configuration\n", tokenCounts(cfg))
			}
			printBus(out, st, o)
			if o.Redis == "" {
				if dataDir != "" {
					fmt.Fprintf(out, "  store:  embedded, durable in %s\n", filepath.Join(dataDir, "store"))
				} else {
					fmt.Fprintf(out, "  store:  embedded, in memory: its data is gone when this process ends (give --data-dir to keep it)\n")
				}
			} else {
				fmt.Fprintf(out, "  store:  %s\n", store.RedactURL(o.Redis))
			}
			if o.Records != "" {
				fmt.Fprintf(out, "  records: %s (public templates, bookings, SIP subscribers, call records)\n", store.RedactURL(o.Records))
			}
			switch {
			case sipOn:
				fmt.Fprintf(out, "  SIP:    udp+tcp %s, account API http://%s/AgoraAccount (also on the API), domain %s\n", sipListen, acctListen, cfg.SIP.Domain)
			case !strings.EqualFold(sipListen, "none"):
				fmt.Fprintf(out, "  SIP:    off: it keeps its subscribers and call records in the records database (give --data-dir or --records)\n")
			}
			if cdrOn {
				fmt.Fprintf(out, "  call records for other systems: http://%s/cdrs (bearer token in %s)\n", cdrListen, cdrToken)
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
	f.StringVar(&o.Token, "api-token", os.Getenv("CONVENE_TOKEN"), "an operator token for the API, beside the configuration's api.tokens (default: with none configured, a new random one)")
	f.StringVar(&o.NATS, "nats", "", "URL of an external NATS server (default: embedded)")
	f.StringVar(&o.NATSListen, "nats-listen", "127.0.0.1:4222", "where the embedded NATS server listens (\"none\": in-process only)")
	f.StringVar(&o.NATSCreds, "nats-creds", "", "with --nats: this process's credentials on that bus: one creds file for every service, or a directory of <role>.creds files (the embedded bus writes its own to <data-dir>/creds)")
	registerTLSFlags(f, &o.NATSTLS)
	f.StringToStringVar(&o.PeerCreds, "nats-peer-creds", nil, "credential files for other platforms' buses, by moid (plat-b=/path/platform.creds); default this platform's own platform credential")
	f.StringVar(&recordsURL, "records", "", "the records database (public templates, bookings): postgres://user:pass@host/db, or sqlite://FILE; default sqlite in --data-dir (none without one); \"none\": no records")
	f.StringVar(&sipListen, "sip-listen", "127.0.0.1:5060", "the SIP node's UDP and TCP address (\"none\": no SIP edge)")
	f.StringVar(&acctListen, "account-listen", "127.0.0.1:14500", "the SIP account API's own address (\"none\": only at POST /AgoraAccount on the API)")
	f.StringVar(&cdrListen, "cdr-listen", "127.0.0.1:8068", "the call-record interface for the operator's own systems, read-only, with its own token (<data-dir>/cdr-token); \"none\": off")
	f.StringVar(&o.Redis, "redis", "", "URL of the platform's Redis store (default: embedded, kept in --data-dir)")
	f.IntVar(&o.SimNodes, "sim-nodes", 0, "simulated media nodes to run in this process")
	f.IntVar(&o.SimCapacity, "sim-capacity", 1000, "conferences each simulated node can host")
	f.StringVar(&dataDir, "data-dir", ".convene", "where the CLI token, the rooms operators failed and the embedded store's data (in store/) are kept; \"\" keeps the embedded store in memory")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&pprofAt, "pprof", "", "serve Go's profiles (/debug/pprof/) on this loopback address, e.g. 127.0.0.1:6060; default none")
	return cmd
}

// printBus tells where the bus is and where its credentials are; a URL is
// printed without its password, a credential by its path only.
func printBus(out io.Writer, st *stack.Stack, o stack.Options) {
	if u := st.BusURL(); u != "" {
		fmt.Fprintf(out, "  bus:    %s (embedded NATS: every connection needs a credential)\n", u)
	} else if o.NATS != "" {
		fmt.Fprintf(out, "  bus:    %s\n", bus.RedactURL(o.NATS))
	} else {
		fmt.Fprintf(out, "  bus:    embedded NATS, in-process only\n")
	}
	c := st.BusCreds()
	switch {
	case o.NATS != "" && o.NATSCreds != "":
		fmt.Fprintf(out, "  creds:  %s\n", o.NATSCreds)
	case o.NATS != "":
	case c != nil && c.Dir() != "":
		fmt.Fprintf(out, "  creds:  %s%c (%s for media nodes, %s for RMS, %s for a platform joining this bus; one <role>.creds per role)\n",
			c.Dir(), filepath.Separator, bus.CredsFile(bus.RoleMCU), bus.CredsFile(bus.RoleRMS), bus.CredsFile(bus.RolePlatform))
	case st.BusURL() != "":
		fmt.Fprintf(out, "  creds:  in memory only: no other process can join the bus (give --data-dir to have them written)\n")
	}
}

func firstDomain(c *config.Config) string {
	for _, d := range c.Domains {
		if d.Platform == c.Platform {
			return d.Moid
		}
	}
	return "<domain>"
}

// maskToken shows enough of a token to tell it from another, never the
// secret: its first four characters.
func maskToken(token string) string {
	if len(token) < 16 {
		return "…"
	}
	return token[:4] + "…"
}

// tokenRole is the role of the token serve was given or made: the
// configuration's when it lists the token, else operator.
func tokenRole(c *config.Config, token string) string {
	for _, t := range c.API.Tokens {
		if t.Token == token {
			return t.RoleOrDefault()
		}
	}
	return config.RoleOperator
}

// tokenCounts says how many of the configuration's API tokens have each
// role: "3 (1 operator, 1 tenant, 1 readonly)".
func tokenCounts(c *config.Config) string {
	n := map[string]int{}
	for _, t := range c.API.Tokens {
		n[t.RoleOrDefault()]++
	}
	return fmt.Sprintf("%d (%d operator, %d tenant, %d readonly)", len(c.API.Tokens),
		n[config.RoleOperator], n[config.RoleTenant], n[config.RoleReadonly])
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
