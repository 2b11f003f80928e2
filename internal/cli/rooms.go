package cli

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/apiclient"
)

func init() { register(roomsCmd) }

// roomsCmd is `convene rooms`: the platform's server rooms, and failing and
// recovering them by hand (seed 000 §1.2: 手动开启, 手动关闭). Without a
// subcommand it lists them.
func roomsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rooms",
		Short: "List the platform's server rooms; fail or recover one by hand",
		Long: "List the platform's server rooms with their state (the default), or fail or recover one by hand.\n" +
			"A room failed by hand stays failed until it is recovered by hand; its conferences move to other rooms.\n" +
			"A room that failed by itself (every media node down) recovers by itself when a node comes back.",
		Args: cobra.NoArgs,
	}
	conn := withAPIClient(cmd)
	list := roomsListCmd(conn)
	cmd.AddCommand(list, roomsFailCmd(conn), roomsRecoverCmd(conn))
	cmd.Flags().AddFlagSet(list.Flags())
	cmd.RunE = list.RunE
	return cmd
}

func roomsListCmd(conn *apiConn) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the platform's server rooms and their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			rooms, err := c.Rooms(cmd.Context())
			if err != nil {
				return conn.fail(err)
			}
			return printRooms(cmd.OutOrStdout(), rooms, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func roomsFailCmd(conn *apiConn) *cobra.Command {
	var (
		reason string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "fail ROOM",
		Short: "Fail a server room by hand: its conferences move to other rooms until you recover it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			rooms, err := c.FailRoom(cmd.Context(), args[0], reason)
			if err != nil {
				return conn.fail(err)
			}
			return printRooms(cmd.OutOrStdout(), rooms, asJSON)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (default \"failed by an operator\")")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func roomsRecoverCmd(conn *apiConn) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "recover ROOM",
		Short: "Recover a server room by hand, however it failed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			rooms, err := c.RecoverRoom(cmd.Context(), args[0])
			if err != nil {
				return conn.fail(err)
			}
			return printRooms(cmd.OutOrStdout(), rooms, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printRooms prints rooms as a table, or as JSON. An abnormal room's state
// says who failed it, when the platform monitor said: an operator (manual)
// or its nodes (auto).
func printRooms(w io.Writer, rooms []apiclient.Room, asJSON bool) error {
	if asJSON {
		return emitJSON(w, rooms)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROOM\tNAME\tTYPE\tSTATE\tLIVE-NODES\tREASON")
	for _, r := range rooms {
		state := r.State
		switch {
		case r.Manual:
			state += " (manual)"
		case r.State == "abnormal" && r.Reason != "":
			state += " (auto)"
		}
		printRow(tw, r.Moid, dash(r.Name), r.Type, state, strconv.Itoa(r.LiveNodes), dash(r.Reason))
	}
	return tw.Flush()
}
