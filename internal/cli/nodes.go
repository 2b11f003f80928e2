package cli

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() { register(nodesCmd) }

// nodesCmd is `convene nodes`: the platform's media nodes and their load.
func nodesCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the platform's media nodes with their load",
		Args:  cobra.NoArgs,
	}
	conn := withAPIClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := conn.client()
		if err != nil {
			return err
		}
		nodes, err := c.Nodes(cmd.Context())
		if err != nil {
			return conn.fail(err)
		}
		out := cmd.OutOrStdout()
		if asJSON {
			return emitJSON(out, nodes)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tROOM\tSTATE\tCONFERENCES\tCAPACITY\tIP")
		for _, n := range nodes {
			state := n.State
			if n.Legacy {
				state += " (legacy)"
			}
			confs := strconv.Itoa(n.Conferences)
			if n.Reported != n.Conferences {
				confs += " (node says " + strconv.Itoa(n.Reported) + ")"
			}
			printRow(tw, n.ID, dash(n.Room), state, confs, strconv.Itoa(n.Capacity), dash(n.IP))
		}
		return tw.Flush()
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
