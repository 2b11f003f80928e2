package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/convene/convene/internal/apiclient"
)

func init() {
	cdrCommands = append(cdrCommands, cdrQueryCmd, cdrStatsCmd, cdrExportCmd)
}

// cdrFilter holds the flags that mirror the query parameters of
// GET /v1/cdrs, /v1/cdrs/stats and /v1/cdrs/export.
type cdrFilter struct {
	start, end, typ, caller, called, connected string
}

func (f *cdrFilter) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.start, "start", "", "records that started at or after this RFC 3339 time (default today 00:00 in the platform's time zone)")
	fs.StringVar(&f.end, "end", "", "records that started before this RFC 3339 time (default tomorrow 00:00)")
	fs.StringVar(&f.typ, "type", "", "voice or video (default both)")
	fs.StringVar(&f.caller, "caller", "", "caller number, or prefix ending in * (8001*)")
	fs.StringVar(&f.called, "called", "", "called number, or prefix ending in * (8001*)")
	fs.StringVar(&f.connected, "connected", "", "true or false (default both)")
}

// query is the filter as the client's query; a malformed flag is
// refused here, naming it, and everything else is the API's to judge.
func (f *cdrFilter) query() (apiclient.CDRQuery, error) {
	q := apiclient.CDRQuery{Type: f.typ, Caller: f.caller, Called: f.called}
	for _, t := range []struct {
		flag, v string
		to      *time.Time
	}{{"start", f.start, &q.Start}, {"end", f.end, &q.End}} {
		if t.v == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339Nano, t.v)
		if err != nil {
			return q, fmt.Errorf("BAD_REQUEST: --%s %s is not an RFC 3339 time: use the form 2025-03-01T00:00:00+08:00", t.flag, printable(t.v))
		}
		*t.to = v
	}
	switch f.connected {
	case "":
	case "true", "false":
		b := f.connected == "true"
		q.Connected = &b
	default:
		return q, fmt.Errorf("BAD_REQUEST: --connected %s: use true or false", printable(f.connected))
	}
	return q, nil
}

func cdrQueryCmd() *cobra.Command {
	var (
		f        cdrFilter
		page     string
		pageSize int
		all      bool
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "query",
		Short: "List call records by time, type, caller, called and connected",
		Long: `Query lists the call records of a running platform, newest first, a page
at a time (--page-size, at most 1000); --page continues where the previous
page said, --all follows every page to the last. With no flags: today's
calls in the platform's time zone.

  convene cdr query --caller '8001*' --type video --connected true --all`,
		Args: cobra.NoArgs,
	}
	conn := withAPIClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		q, err := f.query()
		if err != nil {
			return err
		}
		q.Page, q.PageSize = page, pageSize
		c, err := conn.client()
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		var list []apiclient.CDR
		for {
			p, err := c.CDRs(cmd.Context(), q)
			if err != nil {
				return conn.fail(err)
			}
			list = append(list, p.CDRs...)
			q.Page = p.Next
			if !all || p.Next == "" {
				break
			}
		}
		if asJSON {
			return emitJSON(out, apiclient.CDRPage{CDRs: list, Next: q.Page})
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTART\tTYPE\tCALLER\tCALLED\tCONNECTED\tDURATION\tSTATUS\tNODE\tE164")
		for _, r := range list {
			printRow(tw, r.ID, r.Start.Format(time.RFC3339), r.Type, r.Caller, r.Called, yesNo(r.Connected),
				(time.Duration(r.DurationSeconds) * time.Second).String(), strconv.Itoa(r.Status), dash(r.Node), dash(r.E164))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if q.Page != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "more: --page %s (or --all)\n", q.Page)
		}
		return nil
	}
	fs := cmd.Flags()
	f.register(fs)
	fs.StringVar(&page, "page", "", "continue from the next of a previous page")
	fs.IntVar(&pageSize, "page-size", 0, "records per page, 1 to 1000 (default 100)")
	fs.BoolVar(&all, "all", false, "follow every page to the last")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func cdrStatsCmd() *cobra.Command {
	var (
		f      cdrFilter
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count calls and their duration per type, per hour or day",
		Long: `Stats counts the calls the filters select and their total duration, in all
and per type: one bucket per hour when the range is one day or less, per
day when longer; the last line is the totals.

  convene cdr stats --start 2025-03-01T00:00:00+08:00 --end 2025-03-31T00:00:00+08:00`,
		Args: cobra.NoArgs,
	}
	conn := withAPIClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		q, err := f.query()
		if err != nil {
			return err
		}
		c, err := conn.client()
		if err != nil {
			return err
		}
		st, err := c.CDRStats(cmd.Context(), q)
		if err != nil {
			return conn.fail(err)
		}
		out := cmd.OutOrStdout()
		if asJSON {
			return emitJSON(out, st)
		}
		layout := "2006-01-02 15:04"
		if st.Bucket == "day" {
			layout = "2006-01-02"
		}
		fmt.Fprintf(out, "%s to %s (%s), per %s\n", st.Start.Format(time.RFC3339), st.End.Format(time.RFC3339), printable(st.TimeZone), st.Bucket)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "START\tCALLS\tDURATION_S\tVOICE\tVOICE_S\tVIDEO\tVIDEO_S\t")
		row := func(label string, b apiclient.CDRBucket) {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", label, b.Count, b.DurationSeconds, b.Voice.Count,
				b.Voice.DurationSeconds, b.Video.Count, b.Video.DurationSeconds)
		}
		for _, b := range st.Buckets {
			row(b.Start.Format(layout), b)
		}
		row("total", st.Totals)
		return tw.Flush()
	}
	fs := cmd.Flags()
	f.register(fs)
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func cdrExportCmd() *cobra.Command {
	var (
		f    cdrFilter
		page string
		out  string
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the call records the filters select as CSV",
		Long: `Export writes every call record the filters select as CSV (a header line,
then newest first), to stdout or to --out FILE. The file appears only
once the whole export arrived: an export cut short leaves no file that
looks complete.`,
		Args: cobra.NoArgs,
	}
	conn := withAPIClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		q, err := f.query()
		if err != nil {
			return err
		}
		q.Page = page
		c, err := conn.client()
		if err != nil {
			return err
		}
		if out == "" || out == "-" {
			_, err := c.ExportCDRs(cmd.Context(), q, cmd.OutOrStdout())
			return conn.fail(err)
		}
		n, err := exportToFile(cmd, c, q, out)
		if err != nil {
			return conn.fail(err)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "exported %d bytes to %s\n", n, out)
		return nil
	}
	fs := cmd.Flags()
	f.register(fs)
	fs.StringVar(&page, "page", "", "start from the next of a page of convene cdr query")
	fs.StringVar(&out, "out", "", "write to this file instead of stdout")
	return cmd
}

// exportToFile exports into a temporary file beside path and renames it
// to path once complete.
func exportToFile(cmd *cobra.Command, c *apiclient.Client, q apiclient.CDRQuery, path string) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return 0, fmt.Errorf("--out %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; left only on failure
	n, err := c.ExportCDRs(cmd.Context(), q, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return n, fmt.Errorf("--out: %w", err)
	}
	return n, nil
}
