package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/apiclient"
)

func init() { register(logsCmd) }

// logsPoll is how often --follow asks for new lines; maxLogsLimit is the
// most lines the API gives in one answer.
const (
	logsPoll     = time.Second
	maxLogsLimit = 10000
)

// logsCmd is `convene logs`: the kept log lines of a call or a
// conference, and --follow to watch new ones arrive.
func logsCmd() *cobra.Command {
	var (
		opts   apiclient.LogOptions
		since  string
		follow bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Print the log lines kept about calls and conferences; --follow prints new ones as they come",
		Long: `Print the log lines the platform's services logged about a call (--call-id)
or a conference (--e164), kept in the records database, oldest first.
Without either, every kept line. --follow asks every second for new lines
and prints each once, until interrupted.`,
		Args: cobra.NoArgs,
	}
	conn := withAPIClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		now := time.Now()
		if since != "" {
			t, err := parseSince(since, now)
			if err != nil {
				return err
			}
			opts.Since = t
		} else if follow {
			opts.Since = now
		}
		c, err := conn.client()
		if err != nil {
			return err
		}
		p := &logPrinter{out: cmd.OutOrStdout(), json: asJSON}
		if !follow {
			list, err := c.Logs(cmd.Context(), opts)
			if err != nil {
				return conn.fail(err)
			}
			for _, l := range list.Lines {
				p.print(l)
			}
			return nil
		}
		err = followLogs(cmd.Context(), c, opts, p)
		return conn.fail(err)
	}
	f := cmd.Flags()
	f.StringVar(&opts.E164, "e164", "", "the conference's number")
	f.StringVar(&opts.CallID, "call-id", "", "the call's SIP Call-ID")
	f.StringVar(&opts.Level, "level", "", "the lowest level printed: debug, info, warn or error (default all)")
	f.StringVar(&since, "since", "", "print lines logged since this time: RFC 3339 (2026-01-02T15:04:05Z) or a duration ago (10m, 2h)")
	f.IntVar(&opts.Limit, "limit", 0, "print at most this many lines, the oldest (default 1000, at most 10000)")
	f.BoolVar(&follow, "follow", false, "keep printing new lines as they are kept (every second) until interrupted")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return cmd
}

// parseSince reads --since: an RFC 3339 time, or a duration before now.
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: give an RFC 3339 time (2026-01-02T15:04:05Z) or a duration ago (10m, 2h)", printable(v))
}

// followLogs prints the lines kept since opts.Since, then asks again every
// logsPoll for those after the last printed, each printed once, until ctx
// ends.
func followLogs(ctx context.Context, c *apiclient.Client, opts apiclient.LogOptions, p *logPrinter) error {
	// since is inclusive: the lines of the last printed instant are
	// remembered so that the next answer's copies of them are skipped.
	atLast := map[string]bool{}
	for {
		list, err := c.Logs(ctx, opts)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		printed := 0
		for _, l := range list.Lines {
			key := lineKey(l)
			if l.Time.Equal(opts.Since) && atLast[key] {
				continue
			}
			if !l.Time.Equal(opts.Since) {
				opts.Since, atLast = l.Time, map[string]bool{}
			}
			atLast[key] = true
			p.print(l)
			printed++
		}
		limit := opts.Limit
		if limit == 0 {
			limit = 1000
		}
		if len(list.Lines) >= limit {
			if printed > 0 {
				continue // more are waiting
			}
			if limit < maxLogsLimit {
				// A full page of one instant printed already: ask for more.
				opts.Limit = min(2*limit, maxLogsLimit)
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(logsPoll):
		}
	}
}

// lineKey tells one line from another.
func lineKey(l apiclient.LogLine) string {
	b, _ := json.Marshal(l)
	return string(b)
}

// logPrinter prints lines as text (escaped) or JSON.
type logPrinter struct {
	out  io.Writer
	json bool
}

func (p *logPrinter) print(l apiclient.LogLine) {
	if p.json {
		b, _ := json.Marshal(l)
		fmt.Fprintf(p.out, "%s\n", escapeJSON(b))
		return
	}
	var b strings.Builder
	b.WriteString(l.Time.UTC().Format("2006-01-02T15:04:05.000000Z"))
	fmt.Fprintf(&b, " %-5s", l.Level)
	if l.Node != "" {
		b.WriteString(" " + printable(l.Node))
	}
	if l.E164 != "" {
		b.WriteString(" e164=" + printable(l.E164))
	}
	if l.CallID != "" {
		b.WriteString(" call_id=" + printable(l.CallID))
	}
	b.WriteString(" " + printable(l.Message))
	for _, k := range slices.Sorted(maps.Keys(l.Attrs)) {
		b.WriteString(" " + printable(k) + "=" + printable(l.Attrs[k]))
	}
	fmt.Fprintln(p.out, b.String())
}
