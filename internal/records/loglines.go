package records

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// LogLine is a line of a call's or a conference's log: a SIP message in
// or out, a routing decision, a service's structured log line.
type LogLine struct {
	At      time.Time // kept to the microsecond
	CallID  string    // the SIP Call-ID of the call it belongs to, if any
	E164    string    // the conference it belongs to, if any
	Level   string    // DEBUG, INFO, WARN, ERROR
	Node    string    // the node that logged it
	Message string
	Attrs   map[string]string
}

// LogFilter selects log lines: those of a call, of a conference, or of
// both (a line matching either), since a time, at a level or above.
type LogFilter struct {
	CallID string
	E164   string
	Since  time.Time // zero: from the first
	Levels []string  // nil: any
	Limit  int       // at most this many, oldest first; 0: no limit
}

// id is the line's digest: the same line written twice is stored once.
func (l LogLine) id() string {
	h := sha256.New()
	var at [8]byte
	binary.BigEndian.PutUint64(at[:], uint64(l.At.UnixMicro()))
	h.Write(at[:])
	for _, s := range []string{l.CallID, l.E164, l.Level, l.Node, l.Message} {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{0})
		h.Write([]byte(s))
	}
	for _, k := range slices.Sorted(maps.Keys(l.Attrs)) {
		h.Write([]byte(strconv.Itoa(len(k)) + ":" + k + "=" + strconv.Itoa(len(l.Attrs[k])) + ":" + l.Attrs[k]))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// prepareLines checks lines and fills their defaults.
func prepareLines(lines []LogLine) ([]LogLine, error) {
	out := make([]LogLine, 0, len(lines))
	for _, l := range lines {
		switch {
		case l.At.IsZero():
			return nil, fmt.Errorf("%w: a log line needs its time", ErrInvalid)
		case l.Message == "":
			return nil, fmt.Errorf("%w: a log line needs its message", ErrInvalid)
		}
		for _, f := range []string{l.CallID, l.E164, l.Level, l.Node, l.Message} {
			if !utf8.ValidString(f) || strings.IndexByte(f, 0) >= 0 {
				return nil, fmt.Errorf("%w: log line at %s: %q is not text (UTF-8 without NUL)", ErrInvalid, l.At, f)
			}
		}
		if l.Level == "" {
			l.Level = "INFO"
		}
		l.At = l.At.Truncate(time.Microsecond)
		out = append(out, l)
	}
	return out, nil
}

// AddLogLines stores log lines in one transaction; a line stored already
// is not stored again.
func (db *DB) AddLogLines(ctx context.Context, lines []LogLine) error {
	_, err := db.WriteCalls(ctx, CallBatch{Lines: lines}, nil)
	return err
}

func insertLines(ctx context.Context, tx *batchTx, chunk []LogLine) error {
	const n = 8
	args := make([]any, 0, n*len(chunk))
	var values strings.Builder
	for i, l := range chunk {
		if i > 0 {
			values.WriteString(", ")
		}
		values.WriteString("(" + params(i*n+1, n) + ")")
		attrs := "{}"
		if len(l.Attrs) > 0 {
			b, err := json.Marshal(l.Attrs)
			if err != nil {
				return err
			}
			attrs = string(b)
		}
		args = append(args, l.id(), l.At.UnixMicro(), l.CallID, l.E164, l.Level, l.Node, l.Message, attrs)
	}
	_, err := tx.exec(ctx, `INSERT INTO log_lines (id, at_us, call_id, e164, level, node, message, attrs)
		VALUES `+values.String()+` ON CONFLICT (id) DO NOTHING`, args...)
	return err
}

// LogLines lists the lines f selects, oldest first.
func (db *DB) LogLines(ctx context.Context, f LogFilter) ([]LogLine, error) {
	var (
		conds []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	switch {
	case f.CallID != "" && f.E164 != "":
		conds = append(conds, "((call_id = "+arg(f.CallID)+" AND call_id <> '') OR (e164 = "+arg(f.E164)+" AND e164 <> ''))")
	case f.CallID != "":
		conds = append(conds, "call_id = "+arg(f.CallID), "call_id <> ''")
	case f.E164 != "":
		conds = append(conds, "e164 = "+arg(f.E164), "e164 <> ''")
	}
	if !f.Since.IsZero() {
		conds = append(conds, "at_us >= "+arg(f.Since.UnixMicro()))
	}
	if len(f.Levels) > 0 {
		var in []string
		for _, l := range f.Levels {
			in = append(in, arg(l))
		}
		conds = append(conds, "level IN ("+strings.Join(in, ", ")+")")
	}
	q := `SELECT at_us, call_id, e164, level, node, message, attrs FROM log_lines`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY at_us, id"
	if f.Limit > 0 {
		q += " LIMIT " + arg(f.Limit)
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("records: log lines: %w", err)
	}
	defer rows.Close()
	var out []LogLine
	for rows.Next() {
		var (
			l     LogLine
			at    int64
			attrs string
		)
		if err := rows.Scan(&at, &l.CallID, &l.E164, &l.Level, &l.Node, &l.Message, &attrs); err != nil {
			return nil, fmt.Errorf("records: log lines: %w", err)
		}
		l.At = time.UnixMicro(at).UTC()
		if attrs != "{}" {
			if err := json.Unmarshal([]byte(attrs), &l.Attrs); err != nil {
				return nil, fmt.Errorf("records: log line at %s: attrs are not a JSON object of strings: %w", l.At, err)
			}
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("records: log lines: %w", err)
	}
	return out, nil
}

// DeleteLogLinesBefore deletes the log lines older than before, batch
// lines per transaction (so writers wait for no long delete), and
// returns how many it deleted. Stopped by ctx, it keeps what it deleted.
func (db *DB) DeleteLogLinesBefore(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = 10000
	}
	var total int64
	for {
		res, err := db.w.ExecContext(ctx, `DELETE FROM log_lines WHERE id IN
			(SELECT id FROM log_lines WHERE at_us < $1 ORDER BY at_us LIMIT $2)`, before.UnixMicro(), batch)
		if err != nil {
			return total, fmt.Errorf("records: delete old log lines: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("records: delete old log lines: %w", err)
		}
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}
