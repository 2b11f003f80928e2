package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/apiclient"
)

func init() { register(alarmsCmd) }

// alarmsCmd is `convene alarms`: the platform's alarms (process
// monitoring, seed 003), and acknowledging one. Without a subcommand it
// lists the active ones.
func alarmsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alarms",
		Short: "List the platform's alarms; acknowledge one",
		Long: "List the platform's alarms (the active ones by default, --all for the history as well), or acknowledge one.\n" +
			"An alarm is raised when a host, plugin, media node, server room or platform stops answering or fails, a licence\n" +
			"class passes 90%, a restore keeps failing, or the store or bus cannot be reached; it clears itself when the cause goes.",
		Args: cobra.NoArgs,
	}
	conn := withAPIClient(cmd)
	list := alarmsListCmd(conn)
	cmd.AddCommand(list, alarmsAckCmd(conn))
	cmd.Flags().AddFlagSet(list.Flags())
	cmd.RunE = list.RunE
	return cmd
}

func alarmsListCmd(conn *apiConn) *cobra.Command {
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the active alarms (--all: with the cleared ones)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			state := apiclient.AlarmStateActive
			if all {
				state = apiclient.AlarmStateAll
			}
			alarms, err := c.Alarms(cmd.Context(), state)
			if err != nil {
				return conn.fail(err)
			}
			if asJSON {
				return emitJSON(cmd.OutOrStdout(), apiclient.AlarmList{Alarms: alarms})
			}
			return printAlarms(cmd.OutOrStdout(), alarms)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "list cleared alarms as well")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func alarmsAckCmd(conn *apiConn) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ack ID",
		Short: "Acknowledge an alarm (operator tokens only); it stays active until its cause goes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			a, err := c.AckAlarm(cmd.Context(), args[0])
			if err != nil {
				return conn.fail(err)
			}
			if asJSON {
				return emitJSON(cmd.OutOrStdout(), a)
			}
			return printAlarms(cmd.OutOrStdout(), []apiclient.Alarm{a})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printAlarms(w io.Writer, alarms []apiclient.Alarm) error {
	if len(alarms) == 0 {
		_, err := fmt.Fprintln(w, "no alarms")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSUBJECT\tSEVERITY\tRAISED\tCLEARED\tACKED")
	for _, a := range alarms {
		cleared := "-"
		if a.ClearedAt != nil {
			cleared = a.ClearedAt.Local().Format(time.DateTime)
		}
		acked := "no"
		if a.Acked {
			acked = "yes"
		}
		printRow(tw, a.ID, a.Kind, a.Subject, a.Severity, a.RaisedAt.Local().Format(time.DateTime), cleared, acked)
	}
	return tw.Flush()
}
