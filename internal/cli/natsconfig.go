package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/config"
)

func init() { register(newNATSConfigCommand) }

func newNATSConfigCommand() *cobra.Command {
	var (
		dir      string
		cfgPath  string
		platform string
	)
	cmd := &cobra.Command{
		Use:   "nats-config",
		Short: "Print the NATS server authorization for the bus roles, from a credentials directory",
		Long: `Print the authorization block of a nats-server configuration for a platform's
external bus: one nkey user per role (media nodes, RMS, schedulers, PMS,
registry, API, breakout, SIP nodes, other platforms), each allowed only the
subjects its role needs. The public keys come from the <role>.creds files in
--creds; roles without a file are made one there (mode 0600). Give each
service its file with --nats-creds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Demo()
			if cfgPath != "" {
				var err error
				if cfg, err = config.Load(cfgPath); err != nil {
					return err
				}
			}
			if platform == "" {
				platform = cfg.Platform
			}
			if _, ok := cfg.PlatformByMoid(platform); !ok {
				return fmt.Errorf("nats-config: platform %q is not in the configuration; list it under platforms or pick another with --platform", platform)
			}
			creds, err := bus.OpenCreds(dir)
			if err != nil {
				return err
			}
			conf, err := bus.AuthorizationConfig(creds, platform)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "# nats-server authorization for the bus of platform %s; keys from %s\n%s", platform, dir, conf)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "creds", ".convene/creds", "directory of the <role>.creds files")
	f.StringVar(&cfgPath, "config", "", "configuration file (default: the built-in demo topology)")
	f.StringVar(&platform, "platform", "", "moid of the platform whose bus it is (default: the configuration's)")
	return cmd
}
