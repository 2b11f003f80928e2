package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/apiclient"
)

func init() { register(confCmd) }

// confCmd is `convene conf`: book and control conferences through the API.
func confCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "conf",
		Short: "Create, list, show, end, delay, rename conferences through the REST API",
	}
	conn := withAPIClient(cmd)
	cmd.AddCommand(confCreateCmd(conn), confListCmd(conn), confShowCmd(conn), confEndCmd(conn),
		confDelayCmd(conn), confRenameCmd(conn), confPasswordCmd(conn))
	return cmd
}

func confCreateCmd(conn *apiConn) *cobra.Command {
	var (
		req    apiclient.CreateConferenceRequest
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "create --name N --domain D",
		Short: "Book a conference now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			conf, err := c.CreateConference(cmd.Context(), req)
			if err != nil {
				return conn.fail(err)
			}
			return printConference(cmd.OutOrStdout(), conf, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "conference name (required)")
	f.StringVar(&req.Domain, "domain", "", "user domain moid (required)")
	f.IntVar(&req.Scale, "scale", 8, "parties: 8, 32, 64 or 192")
	f.StringVar(&req.Resolution, "resolution", "720p", "720p or 1080p")
	f.IntVar(&req.DurationMinutes, "duration", 60, "length in minutes")
	f.StringVar(&req.E164, "e164", "", "number to use (default: the next free one)")
	f.StringVar(&req.Password, "password", "", "password to join")
	f.BoolVar(&req.Public, "public", false, "list it publicly")
	f.StringArrayVar(&req.Invited, "invite", nil, "invite a terminal alias (repeatable); invitations make it closed")
	f.BoolVar(&req.Recording, "recording", false, "record it")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("domain")
	return cmd
}

func confListCmd(conn *apiConn) *cobra.Command {
	var (
		domain string
		opts   apiclient.ListOptions
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list --domain D",
		Short: "List a domain's conferences",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			confs, err := c.DomainConferences(cmd.Context(), domain, opts)
			if err != nil {
				return conn.fail(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return emitJSON(out, confs)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "E164\tNAME\tSTATE\tNODE\tROOM\tENDS")
			for _, cf := range confs {
				printRow(tw, cf.E164, cf.Name, cf.State, dash(cf.Node), dash(cf.Room), clock(cf.EndsAt))
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&domain, "domain", "", "user domain moid (required)")
	f.BoolVar(&opts.PublicOnly, "public-only", false, "only public conferences")
	f.StringVar(&opts.Terminal, "terminal", "", "only what this terminal alias may see")
	f.StringVar(&opts.State, "state", "", "only conferences in this state (creating, running, pending-restore)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("domain")
	return cmd
}

func confShowCmd(conn *apiConn) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show E164",
		Short: "Show a conference",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			conf, err := c.Conference(cmd.Context(), args[0])
			if err != nil {
				return conn.fail(err)
			}
			return printConference(cmd.OutOrStdout(), conf, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func confEndCmd(conn *apiConn) *cobra.Command {
	return &cobra.Command{
		Use:   "end E164",
		Short: "End a conference",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			if err := c.EndConference(cmd.Context(), args[0]); err != nil {
				return conn.fail(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "conference %s ended\n", printable(args[0]))
			return nil
		},
	}
}

func confDelayCmd(conn *apiConn) *cobra.Command {
	var minutes int
	cmd := &cobra.Command{
		Use:   "delay E164 --minutes M",
		Short: "Make a conference longer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			conf, err := c.DelayConference(cmd.Context(), args[0], minutes)
			if err != nil {
				return conn.fail(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "conference %s now lasts %d minutes and ends %s\n", printable(conf.E164), conf.DurationMinutes, clock(conf.EndsAt))
			return nil
		},
	}
	cmd.Flags().IntVar(&minutes, "minutes", 0, "minutes to add (required)")
	_ = cmd.MarkFlagRequired("minutes")
	return cmd
}

func confRenameCmd(conn *apiConn) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "rename E164 --name N",
		Short: "Rename a conference",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			conf, err := c.UpdateConference(cmd.Context(), args[0], apiclient.UpdateConferenceRequest{Name: &name})
			if err != nil {
				return conn.fail(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "conference %s is now %q\n", printable(conf.E164), conf.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "new name (required)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func confPasswordCmd(conn *apiConn) *cobra.Command {
	var password string
	cmd := &cobra.Command{
		Use:   "password E164 --password P",
		Short: "Change a conference's password (an empty one removes it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			conf, err := c.UpdateConference(cmd.Context(), args[0], apiclient.UpdateConferenceRequest{Password: &password})
			if err != nil {
				return conn.fail(err)
			}
			what := "removed"
			if conf.HasPassword {
				what = "changed"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "conference %s: password %s\n", printable(conf.E164), what)
			return nil
		},
	}
	cmd.Flags().StringVar(&password, "password", "", "new password (required; \"\" removes it)")
	_ = cmd.MarkFlagRequired("password")
	return cmd
}

// printConference prints one conference as a short table or as JSON.
func printConference(w io.Writer, c apiclient.Conference, asJSON bool) error {
	if asJSON {
		return emitJSON(w, c)
	}
	node := dash(c.Node)
	if c.NodeIP != "" {
		node += " (" + c.NodeIP + ")"
	}
	where := c.Platform
	if c.RealPlatform != "" && c.RealPlatform != c.Platform {
		where += ", running on " + c.RealPlatform
	}
	state := c.State
	if c.Reason != "" {
		state += " (" + c.Reason + ")"
	}
	invited := "anyone"
	if len(c.Invited) > 0 {
		invited = strings.Join(c.Invited, ", ")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, row := range [][2]string{
		{"E164", c.E164},
		{"NAME", c.Name},
		{"DOMAIN", c.Domain},
		{"STATE", state},
		{"NODE", node},
		{"ROOM", dash(c.Room)},
		{"PLATFORM", dash(where)},
		{"CLASS", strconv.Itoa(c.Scale) + " parties, " + c.Resolution},
		{"STARTED", clock(c.StartedAt)},
		{"ENDS", clock(c.EndsAt) + " (" + strconv.Itoa(c.DurationMinutes) + " min)"},
		{"INVITED", invited},
		{"PUBLIC", yesNo(c.Public)},
		{"RECORDING", yesNo(c.Recording)},
		{"PASSWORD", map[bool]string{true: "set", false: "none"}[c.HasPassword]},
	} {
		printRow(tw, row[0], row[1])
	}
	return tw.Flush()
}

// clock shows a time in local time; the zero time is "-".
func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
