package cdr

import (
	"context"
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/convene/convene/internal/records"
)

// exportPage is the records read per step of an export.
const exportPage = 1000

// CSVHeader is the first line of an export.
var CSVHeader = []string{"id", "call_id", "start", "answer", "end", "duration_seconds", "type", "caller", "called",
	"connected", "status", "node", "platform", "e164"}

// Export writes the call records q selects (its page size aside; from
// its page on, when it has one) to w as CSV, newest first, with a header
// line. It reads them a page at a time and writes each page as it comes,
// so memory does not grow with the number of records. Text a
// spreadsheet would take for a formula (=, +, -, @ first, not a plain
// number) is written with a leading apostrophe.
func (s *Service) Export(ctx context.Context, q Query, w io.Writer) error {
	f := q.filter()
	if q.Page != "" {
		c, err := decodeCursor(q.Page)
		if err != nil {
			return err
		}
		f.After = &c
	}
	f.Limit = exportPage
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	row := make([]string, len(CSVHeader))
	for {
		calls, err := s.db.CallRecords(ctx, f)
		if err != nil {
			return err
		}
		for _, c := range calls {
			s.csvRow(row, c)
			if err := cw.Write(row); err != nil {
				return err
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		if len(calls) < exportPage {
			return nil
		}
		last := calls[len(calls)-1]
		f.After = &records.CallCursor{Start: last.Start, ID: last.ID}
	}
}

func (s *Service) csvRow(row []string, c records.Call) {
	t := func(v time.Time) string {
		if v.IsZero() {
			return ""
		}
		return v.In(s.loc).Format("2006-01-02T15:04:05.000Z07:00")
	}
	row[0], row[1], row[2], row[3], row[4] = c.ID, cell(c.CallID), t(c.Start), t(c.Answer), t(c.End)
	row[5], row[6], row[7], row[8] = strconv.FormatInt(c.DurationSeconds, 10), c.Type, cell(c.Caller), cell(c.Called)
	row[9], row[10], row[11], row[12], row[13] = strconv.FormatBool(c.Connected), strconv.Itoa(c.Status), cell(c.Node), cell(c.Platform), cell(c.E164)
}

// cell defuses text a spreadsheet would run as a formula: a cell that
// starts with =, +, -, @, a tab or a carriage return, unless it is a
// plain number such as +8613800138000, gets a leading apostrophe.
func cell(v string) string {
	if v == "" || !strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return v
	}
	if len(v) > 1 && strings.Trim(v[1:], "0123456789") == "" && (v[0] == '+' || v[0] == '-') {
		return v
	}
	return "'" + v
}
