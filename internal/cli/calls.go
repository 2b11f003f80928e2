package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/convene/convene/internal/apiclient"
)

func init() { register(callsCmd) }

// maxLivePages bounds the pages of live calls one listing reads (1,000
// calls each).
const maxLivePages = 100

// callsCmd is `convene calls`: the calls in progress.
func callsCmd() *cobra.Command {
	var (
		follow   bool
		interval time.Duration
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "calls",
		Short: "List the calls in progress; --follow prints each start, answer and end",
		Long: `Calls lists the calls in progress on every SIP node of the platform,
newest first. --follow keeps watching (reading them every --interval) and
prints a line for each call that starts, is answered or ends, until
interrupted.`,
		Args: cobra.NoArgs,
	}
	conn := withAPIClient(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if interval < 100*time.Millisecond {
			return fmt.Errorf("BAD_REQUEST: --interval %s: use 100ms or more", interval)
		}
		c, err := conn.client()
		if err != nil {
			return err
		}
		ctx, out := cmd.Context(), cmd.OutOrStdout()
		calls, err := liveCalls(ctx, c)
		if err != nil {
			return conn.fail(err)
		}
		if asJSON && !follow {
			return emitJSON(out, apiclient.LiveCalls{Calls: calls})
		}
		if !asJSON {
			if err := printLiveCalls(out, calls); err != nil {
				return err
			}
		}
		if !follow {
			return nil
		}
		w := &callWatcher{c: c, out: out, asJSON: asJSON, seen: map[string]apiclient.CDR{}}
		for _, call := range calls {
			w.seen[call.ID] = call
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			now, err := liveCalls(ctx, c)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				// The API may be restarting: say so and keep watching.
				fmt.Fprintf(cmd.ErrOrStderr(), "calls: %v\n", conn.fail(err))
				continue
			}
			w.update(ctx, now)
		}
	}
	f := cmd.Flags()
	f.BoolVar(&follow, "follow", false, "keep watching, printing each start, answer and end")
	f.DurationVar(&interval, "interval", time.Second, "with --follow, how often the live calls are read")
	f.BoolVar(&asJSON, "json", false, "print JSON (with --follow: one change per line)")
	return cmd
}

// liveCalls reads every page of the calls in progress.
func liveCalls(ctx context.Context, c *apiclient.Client) ([]apiclient.CDR, error) {
	var (
		all  []apiclient.CDR
		page string
	)
	for range maxLivePages {
		p, err := c.LiveCalls(ctx, page, 1000)
		if err != nil {
			return nil, err
		}
		all = append(all, p.Calls...)
		if page = p.Next; page == "" {
			break
		}
	}
	return all, nil
}

func printLiveCalls(out io.Writer, calls []apiclient.CDR) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTART\tTYPE\tCALLER\tCALLED\tANSWERED\tNODE\tE164")
	for _, c := range calls {
		answered := "-"
		if c.Answer != nil {
			answered = c.Answer.Format(time.TimeOnly)
		}
		printRow(tw, c.ID, c.Start.Format(time.RFC3339), c.Type, c.Caller, c.Called, answered, dash(c.Node), dash(c.E164))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "%d calls in progress\n", len(calls))
	return err
}

// callWatcher prints the changes between two readings of the live calls.
type callWatcher struct {
	c      *apiclient.Client
	out    io.Writer
	asJSON bool
	seen   map[string]apiclient.CDR
}

// change is a line of --follow --json.
type change struct {
	Kind string        `json:"kind"`
	Call apiclient.CDR `json:"call"`
}

func (w *callWatcher) update(ctx context.Context, now []apiclient.CDR) {
	current := make(map[string]bool, len(now))
	// Oldest first, so that the lines read in the order things happened.
	for i := len(now) - 1; i >= 0; i-- {
		call := now[i]
		current[call.ID] = true
		before, known := w.seen[call.ID]
		switch {
		case !known:
			w.print("call.started", call)
			if call.Answer != nil {
				w.print("call.answered", call)
			}
		case before.Answer == nil && call.Answer != nil:
			w.print("call.answered", call)
		}
		w.seen[call.ID] = call
	}
	for id, call := range w.seen {
		if current[id] {
			continue
		}
		delete(w.seen, id)
		if rec, err := w.c.CDR(ctx, id); err == nil {
			call = rec // its record: end, duration, status
		}
		w.print("call.ended", call)
	}
}

func (w *callWatcher) print(kind string, c apiclient.CDR) {
	if w.asJSON {
		data, err := json.Marshal(change{Kind: kind, Call: c})
		if err == nil {
			_, _ = w.out.Write(append(escapeJSON(data), '\n'))
		}
		return
	}
	at, detail := c.Start, c.Type
	switch kind {
	case "call.answered":
		at = *c.Answer
	case "call.ended":
		at = time.Now()
		if c.End != nil {
			at = *c.End
			detail += ", status " + strconv.Itoa(c.Status) + ", " + (time.Duration(c.DurationSeconds) * time.Second).String()
		}
	}
	fmt.Fprintf(w.out, "%s  %-13s %s  %s -> %s  (%s)\n", at.Format(time.TimeOnly), kind, printable(c.ID),
		printable(c.Caller), printable(c.Called), printable(detail))
}
