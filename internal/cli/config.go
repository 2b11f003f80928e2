package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/config"
)

func init() { register(configCmd) }

// configCmd is `convene config`: the configuration file.
func configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print an example configuration, or check one",
	}
	cmd.AddCommand(configExampleCmd(), configCheckCmd())
	return cmd
}

func configExampleCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "example",
		Short: "Print the demo topology as YAML, every field explained",
		Long: `Print the built-in demo topology (what ` + "`convene serve`" + ` runs without
--config) as a configuration file, with a comment on every field and an
example API token of each role (operator, tenant, readonly), commented
out. ` + "`convene serve --config FILE`" + ` reads what it prints:

    convene config example > topology.yaml
    convene serve --config topology.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := config.Example()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
}

func configCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Check a configuration file as `convene serve --config` would read it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := config.Load(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: platform %s of %d, %d user domains, API tokens: %s\n",
				printable(args[0]), printable(c.Platform), len(c.Platforms), len(c.Domains), tokenCounts(c))
			return nil
		},
	}
}
