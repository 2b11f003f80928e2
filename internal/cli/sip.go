package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	_ "github.com/convene/convene/internal/bus/busplugin" // the bus resource
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/host"
	"github.com/convene/convene/internal/sip/sipplugin"
)

func init() { register(sipCmd) }

// sipNode is how `convene sip` runs a SIP node.
type sipNode struct {
	cfgPath       string
	bus           busFlags
	redis         string
	records       string
	sipListen     string
	accountListen string
	name          string
	dataDir       string
	logLevel      string
	algorithms    []string
}

func sipCmd() *cobra.Command {
	var o sipNode
	cmd := &cobra.Command{
		Use:   "sip",
		Short: "Run a SIP node of a platform (the other datacenter's); manage SIP subscribers",
		Long: `Run one more SIP node of a running platform: registrar and proxy on UDP
and TCP (--sip-listen) and the account API (--account-listen), sharing the
platform's store (--redis: registrations, nonces, calls in progress), its
bus (--nats: the registry and RMS, for calls to conferences) and its
records database (--records: subscribers and call records). A node has a
name of its own among the platform's SIP nodes (--name).

The SIP domain and the account API's appid are the topology's sip:
section (--config; the demo topology without it).

  convene sip --nats nats://10.0.0.1:4222 --redis redis://10.0.0.1:6379 \
    --records postgres://convene@10.0.0.1/convene --name sip-b \
    --sip-listen 10.0.1.1:5060 --account-listen 10.0.1.1:14500`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cfgPath, "config", "", "topology file (default: the demo topology)")
	o.bus.register(f, bus.RoleSIP)
	f.StringVar(&o.redis, "redis", "", "the platform's store: redis://host:6379[/db] (required)")
	f.StringVar(&o.records, "records", "", "the records database: postgres://user@host/db or a SQLite file (default <data-dir>/records.db)")
	f.StringVar(&o.sipListen, "sip-listen", "127.0.0.1:5060", "UDP and TCP address of the node")
	f.StringVar(&o.accountListen, "account-listen", "127.0.0.1:14500", "address of the account API; none: no account API")
	f.StringVar(&o.name, "name", "", "the node's name, unique among the platform's SIP nodes (default sip-<host name>)")
	f.StringSliceVar(&o.algorithms, "digest", []string{"SHA-256", "MD5"}, "digest algorithms offered to terminals, preferred first (terminals that answer only the first challenge and know only MD5 need MD5 first)")
	f.StringVar(&o.dataDir, "data-dir", ".convene", "where the node's defaults live (creds/sip.creds, records.db)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.AddCommand(sipUsersCmd())
	return cmd
}

// hostFile is the host file of the node, built in memory.
func (o *sipNode) hostFile() (*host.File, error) {
	cfg := config.Demo()
	if o.cfgPath != "" {
		var err error
		if cfg, err = config.Load(o.cfgPath); err != nil {
			return nil, err
		}
	}
	url := firstNonEmpty(o.bus.url, os.Getenv("CONVENE_NATS"))
	switch {
	case url == "":
		return nil, errors.New("sip: no bus: give --nats nats://host:4222 (the platform's), or --nats none for a node that calls no conference")
	case o.redis == "":
		return nil, errors.New("sip: no store: give --redis redis://host:6379, the platform's store the other SIP nodes share")
	case strings.EqualFold(o.sipListen, "none"):
		return nil, errors.New("sip: --sip-listen none runs no node: give the node's address")
	}
	name := o.name
	if name == "" {
		h, _ := os.Hostname()
		h, _, _ = strings.Cut(h, ".")
		name = "sip-" + h
	}
	infra := map[string]any{
		"store": map[string]any{"plugin": "convene.store.redis", "url": o.redis},
	}
	records := map[string]any{"plugin": "convene.records.sql"}
	if o.records != "" {
		records["url"] = o.records
	}
	infra["records"] = records
	servers := map[string]any{}
	for k, v := range sipplugin.Sections(sipplugin.Node{Name: name, SIPListen: o.sipListen, AccountListen: o.accountListen, Algorithms: o.algorithms}) {
		servers[k] = v
	}
	acct := servers["sip-account"].(map[string]any)
	if strings.EqualFold(o.accountListen, "none") {
		delete(servers, "sip-account")
	} else {
		acct["mount"] = false // this host serves no API
	}
	if strings.EqualFold(url, "none") {
		servers["sip"].(map[string]any)["bus"] = ""
	} else {
		b := map[string]any{"plugin": "convene.bus.nats", "url": url}
		creds := firstNonEmpty(o.bus.creds, os.Getenv("CONVENE_NATS_CREDS"))
		if def := filepath.Join(o.dataDir, "creds", bus.CredsFile(bus.RoleSIP)); creds == "" {
			if _, err := os.Stat(def); err == nil {
				creds = def
			}
		}
		if creds != "" {
			b["creds"] = creds
		}
		if t := o.bus.tls; t != (bus.TLSFiles{}) {
			b["tls"] = map[string]string{"ca": t.CAFile, "cert": t.CertFile, "key": t.KeyFile}
		}
		infra["bus"] = b
	}
	doc := map[string]any{
		"host":           map[string]any{"name": name, "data_dir": o.dataDir, "platform": cfg.Platform},
		"infrastructure": infra,
		"servers":        servers,
	}
	if o.cfgPath != "" {
		doc["topology"] = o.cfgPath
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return host.Parse("convene sip", data)
}

func (o *sipNode) run(ctx context.Context, out, errw io.Writer) error {
	f, err := o.hostFile()
	if err != nil {
		return err
	}
	h, err := host.New(f, host.Options{Log: newLogger(errw, o.logLevel)})
	if err != nil {
		return err
	}
	if err := h.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "SIP node %s of platform %s is serving\n", printable(f.Host.Name), printable(f.Host.Platform))
	if p, ok := h.Instance("sip"); ok {
		n := p.(*sipplugin.Proxy).Node()
		fmt.Fprintf(out, "  SIP:          udp %s, tcp %s\n", n.UDPAddr(), n.TCPAddr())
	}
	if a, ok := h.Instance("sip-account"); ok {
		fmt.Fprintf(out, "  account API:  http://%s/AgoraAccount\n", a.(*sipplugin.Account).Addr())
	}
	<-ctx.Done()
	stop, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return h.Stop(stop)
}

func sipUsersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Add, list and disable the SIP subscribers (through the API)",
	}
	api := withAPIClient(cmd)
	var password string
	var fromStdin bool
	add := &cobra.Command{
		Use:   "add USER",
		Short: "Add a subscriber, or give one a new password (which enables it again)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if fromStdin {
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				password = strings.TrimRight(line, "\r\n")
			}
			if password == "" {
				return errors.New("no password: give --password, or --password-stdin and the password on standard input")
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			s, err := c.PutSIPSubscriber(cmd.Context(), apiclient.SIPSubscriberRequest{User: args[0], Password: password})
			if err != nil {
				return api.fail(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "subscriber %s@%s (version %d)\n", printable(s.User), printable(s.Realm), s.Version)
			return nil
		},
	}
	add.Flags().StringVar(&password, "password", "", "the subscriber's password (4 to 128 bytes; visible to other users of this machine: prefer --password-stdin)")
	add.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the subscribers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			printRow(tw, "USER", "REALM", "STATE", "UPDATED")
			page := ""
			for {
				p, err := c.SIPSubscribers(cmd.Context(), page, 0)
				if err != nil {
					return api.fail(err)
				}
				for _, s := range p.Subscribers {
					state := "enabled"
					if s.Disabled {
						state = "disabled"
					}
					printRow(tw, s.User, s.Realm, state, s.UpdatedAt.Format(time.RFC3339))
				}
				if page = p.Next; page == "" {
					break
				}
			}
			return tw.Flush()
		},
	}
	disable := &cobra.Command{
		Use:   "disable USER",
		Short: "Disable a subscriber: it can no longer register or call",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			s, err := c.DisableSIPSubscriber(cmd.Context(), args[0])
			if err != nil {
				return api.fail(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "subscriber %s disabled\n", printable(s.User))
			return nil
		},
	}
	cmd.AddCommand(add, list, disable)
	return cmd
}
