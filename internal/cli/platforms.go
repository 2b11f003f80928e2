package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/apiclient"
)

func init() { register(platformsCmd) }

// platformsCmd is `convene platforms`: the platforms of the topology as the
// local platform monitor sees them, switching the local platform over and
// back by hand, and the DR modes of its masters (seed 000 §2: 自动, 手动开启,
// 手动关闭, 关闭). Without a subcommand it lists them.
func platformsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "platforms",
		Short: "List the platforms; switch this one over or back; set a master's DR mode",
		Long: "List the platforms with their state as this platform's monitor sees them (the default),\n" +
			"switch this platform over to its backups by hand (fail) and back (recover),\n" +
			"or set the disaster-recovery mode of one of its masters (dr):\n" +
			"  automatic   the master fails over when it is observed abnormal or unreachable\n" +
			"  manual-on   the master is failed over, whatever is observed\n" +
			"  manual-off  the master is kept normal, whatever is observed\n" +
			"  closed      this platform's scheduler is never told of the master's failures",
		Args: cobra.NoArgs,
	}
	conn := withAPIClient(cmd)
	list := platformsListCmd(conn)
	cmd.AddCommand(list, platformsFailCmd(conn), platformsRecoverCmd(conn), platformsDRCmd(conn))
	cmd.Flags().AddFlagSet(list.Flags())
	cmd.RunE = list.RunE
	return cmd
}

func platformsListCmd(conn *apiConn) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the platforms and their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			ps, err := c.Platforms(cmd.Context())
			if err != nil {
				return conn.fail(err)
			}
			return printPlatforms(cmd.OutOrStdout(), ps, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func platformsFailCmd(conn *apiConn) *cobra.Command {
	var (
		reason string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "fail PLATFORM",
		Short: "Switch this platform over by hand: its backups take its conferences until you recover it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			ps, err := c.FailPlatform(cmd.Context(), args[0], reason)
			if err != nil {
				return conn.fail(err)
			}
			return printPlatforms(cmd.OutOrStdout(), ps, asJSON)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (default \"switched over by an operator\")")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func platformsRecoverCmd(conn *apiConn) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "recover PLATFORM",
		Short: "Switch this platform back after fail",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			ps, err := c.RecoverPlatform(cmd.Context(), args[0])
			if err != nil {
				return conn.fail(err)
			}
			return printPlatforms(cmd.OutOrStdout(), ps, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func platformsDRCmd(conn *apiConn) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "dr MASTER MODE",
		Short: "Set the DR mode of a master platform: automatic, manual-on, manual-off or closed",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			ps, err := c.SetDRMode(cmd.Context(), args[0], args[1])
			if err != nil {
				return conn.fail(err)
			}
			return printPlatforms(cmd.OutOrStdout(), ps, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printPlatforms prints platforms as a table, or as JSON. A platform an
// operator switched over says so in its state.
func printPlatforms(w io.Writer, ps []apiclient.Platform, asJSON bool) error {
	if asJSON {
		return emitJSON(w, ps)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLATFORM\tNAME\tRELATION\tSTATE\tOBSERVED\tDR\tREASON")
	for _, p := range ps {
		state := p.State
		if p.Manual {
			state += " (manual)"
		}
		printRow(tw, p.Moid, dash(p.Name), dash(p.Relation), dash(state), dash(p.Observed), dash(p.DRMode), dash(p.Reason))
	}
	return tw.Flush()
}
