package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
)

// Call is one call: live while End is zero, then its call record (seed
// 003's 话单). ID is the key: the caller chooses it, the same for every
// step of one call (the call records service derives it from the SIP
// Call-ID and from-tag), so a step sent again, or by another node, finds
// the call it belongs to.
type Call struct {
	ID        string
	CallID    string // the SIP Call-ID
	FromTag   string
	ToTag     string
	Caller    string
	Called    string
	Type      string // CallVoice or CallVideo ("" while unknown on a live call)
	Connected bool
	Start     time.Time
	Answer    time.Time // zero: not answered
	End       time.Time // zero: live
	// DurationSeconds is from answer to end, rounded to the nearest
	// second; 0 for a call never answered. Set when the record is written.
	DurationSeconds int64
	Status          int // the final SIP status code
	Node            string
	Platform        string
	E164            string // the conference called, if any
}

// Call types.
const (
	CallVoice = "voice"
	CallVideo = "video"
)

// LogValue logs a call by its identity.
func (c Call) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", c.ID), slog.String("call_id", c.CallID),
		slog.String("node", c.Node), slog.String("e164", c.E164))
}

// CallStepKind is what a step of a call says happened.
type CallStepKind int

const (
	CallStart  CallStepKind = iota + 1 // the INVITE was seen
	CallAnswer                         // a 2xx answered it
	CallEnd                            // the call ended (BYE, CANCEL, a final failure, a timer)
)

// CallStep is one step of a call. Its Call holds what the step knows;
// zero fields are unknown and leave the stored value alone.
type CallStep struct {
	Kind CallStepKind
	Call Call
}

// Buckets says in which hour and which day a call that started at start
// is counted: the first instants of both, in the time zone of the
// roll-ups.
type Buckets func(start time.Time) (hour, day time.Time)

// CallBatch is written in one transaction: the steps in order, and log
// lines.
type CallBatch struct {
	Steps []CallStep
	Lines []LogLine
}

// CallOutcome is what a batch changed.
type CallOutcome struct {
	// Live holds the stored state of each call a start or answer step of
	// the batch touched and that is still live after it.
	Live map[string]Call
	// Ended holds the record of each call the batch ended: only the first
	// end of a call writes a record and counts in the roll-ups; an end
	// sent again, or seen by a second node, writes nothing.
	Ended map[string]Call
	// Late names calls whose start or answer came after their record was
	// written: nothing was changed for them.
	Late map[string]bool
}

// maxRows bounds the rows of one multi-row statement (up to 1,024
// parameters): few round trips to PostgreSQL, and SQLite's parse stays
// short.
const maxRows = 64

// writeAttempts bounds the tries of a batch PostgreSQL aborts for a
// deadlock or a serialization failure.
const writeAttempts = 4

func (s CallStep) check() error {
	c := s.Call
	switch {
	case s.Kind < CallStart || s.Kind > CallEnd:
		return fmt.Errorf("%w: call %s: unknown step kind %d", ErrInvalid, c.ID, s.Kind)
	case c.ID == "":
		return fmt.Errorf("%w: a call step needs the call's id", ErrInvalid)
	case c.Type != "" && c.Type != CallVoice && c.Type != CallVideo:
		return fmt.Errorf("%w: call %s: type %q: a call is %q or %q", ErrInvalid, c.ID, c.Type, CallVoice, CallVideo)
	case s.Kind == CallEnd && c.End.IsZero():
		return fmt.Errorf("%w: call %s: an end step needs the end time", ErrInvalid, c.ID)
	}
	for _, f := range []string{c.ID, c.CallID, c.FromTag, c.ToTag, c.Caller, c.Called, c.Node, c.Platform, c.E164} {
		if !utf8.ValidString(f) || strings.IndexByte(f, 0) >= 0 {
			return fmt.Errorf("%w: call %s: %q is not text (UTF-8 without NUL)", ErrInvalid, c.ID, f)
		}
	}
	return nil
}

// WriteCalls applies a batch in one transaction, and returns what it
// changed. Every step is safe to repeat: a start or answer merges what it
// knows into the live call (text fields keep their first value, the type
// its last, times their earliest, connected once true stays true), and
// an end moves the call to its record and counts it, in the roll-ups, in
// the hour and day that buckets gives for its start, once. Two nodes
// writing the same call at once on PostgreSQL wait for each other on the
// call's live row, so the record is written once and a start arriving
// after the end leaves no live call behind.
//
// Errors: ErrInvalid (nothing written), or the database's.
func (db *DB) WriteCalls(ctx context.Context, b CallBatch, buckets Buckets) (CallOutcome, error) {
	for _, s := range b.Steps {
		if err := s.check(); err != nil {
			return CallOutcome{}, err
		}
	}
	lines, err := prepareLines(b.Lines)
	if err != nil {
		return CallOutcome{}, err
	}
	deltas := foldSteps(b.Steps)
	for attempt := 1; ; attempt++ {
		out, err := db.writeCalls(ctx, deltas, lines, buckets)
		if err == nil || attempt == writeAttempts || !retryable(err) {
			return out, err
		}
		db.log.Warn("records: call batch retried", "attempt", attempt, "err", err)
	}
}

// retryable reports whether PostgreSQL aborted a transaction that may
// succeed when run again.
func retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40P01" || pg.Code == "40001")
}

// callDelta is what a batch says about one call, its steps folded.
type callDelta struct {
	live     Call // the fields a live row keeps, merged over the steps
	ended    bool
	end      time.Time
	status   int
	touched  bool // a start or answer step
	firstEnd int  // index of its first end step
}

// foldSteps merges the steps of each call, sorted by id: the order in
// which every transaction takes the calls' rows, so two writers never
// wait for each other in a cycle.
func foldSteps(steps []CallStep) []*callDelta {
	byID := map[string]*callDelta{}
	var out []*callDelta
	for _, s := range steps {
		d := byID[s.Call.ID]
		if d == nil {
			d = &callDelta{live: Call{ID: s.Call.ID}}
			byID[s.Call.ID] = d
			out = append(out, d)
		}
		d.live = mergeLive(d.live, s.Call)
		if s.Kind == CallEnd {
			if !d.ended {
				d.ended, d.end, d.status = true, s.Call.End, s.Call.Status
			}
		} else {
			d.touched = true
		}
	}
	slices.SortFunc(out, func(a, b *callDelta) int { return strings.Compare(a.live.ID, b.live.ID) })
	return out
}

// mergeLive merges what a later step says into a call, by the rules of
// WriteCalls (the SQL of upsertLive says the same).
func mergeLive(old, c Call) Call {
	first := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	earliest := func(a, b time.Time) time.Time {
		if a.IsZero() || (!b.IsZero() && b.Before(a)) {
			return b
		}
		return a
	}
	old.CallID, old.FromTag, old.ToTag = first(old.CallID, c.CallID), first(old.FromTag, c.FromTag), first(old.ToTag, c.ToTag)
	old.Caller, old.Called = first(old.Caller, c.Caller), first(old.Called, c.Called)
	if c.Type != "" {
		old.Type = c.Type
	}
	old.Connected = old.Connected || c.Connected
	old.Start, old.Answer = earliest(old.Start, c.Start), earliest(old.Answer, c.Answer)
	old.Node, old.Platform, old.E164 = first(old.Node, c.Node), first(old.Platform, c.Platform), first(old.E164, c.E164)
	return old
}

func (db *DB) writeCalls(ctx context.Context, deltas []*callDelta, lines []LogLine, buckets Buckets) (CallOutcome, error) {
	out := CallOutcome{Live: map[string]Call{}, Ended: map[string]Call{}, Late: map[string]bool{}}
	sqlTx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return CallOutcome{}, fmt.Errorf("%w: %s: %w", ErrUnavailable, db.shown, err)
	}
	defer func() { _ = sqlTx.Rollback() }()
	tx := &batchTx{tx: sqlTx, dialect: db.dialect}

	// Every call of the batch through its live row: merged there, and
	// locked (PostgreSQL) until the transaction ends.
	merged := map[string]Call{}
	for chunk := range slices.Chunk(deltas, maxRows) {
		if err := upsertLive(ctx, tx, chunk, merged); err != nil {
			return CallOutcome{}, fmt.Errorf("records: write calls: live: %w", err)
		}
	}
	var ended, touched []string
	records := []Call{}
	for _, d := range deltas {
		if d.ended {
			ended = append(ended, d.live.ID)
			records = append(records, finalRecord(merged[d.live.ID], d.end, d.status))
		} else if d.touched {
			touched = append(touched, d.live.ID)
		}
	}
	for chunk := range slices.Chunk(ended, maxRows) {
		if _, err := tx.exec(ctx, "DELETE FROM live_calls WHERE id IN ("+params(1, len(chunk))+")", anys(chunk)...); err != nil {
			return CallOutcome{}, fmt.Errorf("records: write calls: end live calls: %w", err)
		}
	}
	roll := rollups{}
	for chunk := range slices.Chunk(records, maxRows) {
		inserted, err := insertRecords(ctx, tx, chunk)
		if err != nil {
			return CallOutcome{}, fmt.Errorf("records: write calls: records: %w", err)
		}
		for _, r := range chunk {
			if inserted[r.ID] {
				out.Ended[r.ID] = r
				roll.add(r, buckets)
			}
		}
	}
	if err := roll.write(ctx, tx); err != nil {
		return CallOutcome{}, fmt.Errorf("records: write calls: roll-ups: %w", err)
	}
	// A start or answer of a call already recorded (a late retry, another
	// node's) must not leave it live again.
	for chunk := range slices.Chunk(touched, maxRows) {
		rows, err := tx.query(ctx, "DELETE FROM live_calls WHERE id IN ("+params(1, len(chunk))+
			") AND EXISTS (SELECT 1 FROM call_records r WHERE r.id = live_calls.id) RETURNING id", anys(chunk)...)
		if err != nil {
			return CallOutcome{}, fmt.Errorf("records: write calls: late steps: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return CallOutcome{}, err
			}
			out.Late[id] = true
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return CallOutcome{}, fmt.Errorf("records: write calls: late steps: %w", err)
		}
	}
	for _, id := range touched {
		if !out.Late[id] {
			out.Live[id] = merged[id]
		}
	}
	for chunk := range slices.Chunk(lines, maxRows/2) {
		if err := insertLines(ctx, tx, chunk); err != nil {
			return CallOutcome{}, fmt.Errorf("records: write log lines: %w", err)
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return CallOutcome{}, fmt.Errorf("records: write calls: commit: %w", err)
	}
	return out, nil
}

const liveCols = `id, call_id, from_tag, to_tag, caller, called, type, connected, start_at, answer_at, node, platform, e164`

// upsertLive merges the deltas into their live rows (inserting those
// missing) and puts the stored results in merged.
func upsertLive(ctx context.Context, tx *batchTx, chunk []*callDelta, merged map[string]Call) error {
	const n = 13
	args := make([]any, 0, n*len(chunk))
	var values strings.Builder
	for i, d := range chunk {
		if i > 0 {
			values.WriteString(", ")
		}
		values.WriteString("(" + params(i*n+1, n) + ")")
		c := d.live
		args = append(args, c.ID, c.CallID, c.FromTag, c.ToTag, c.Caller, c.Called, c.Type, c.Connected,
			ms(c.Start), ms(c.Answer), c.Node, c.Platform, c.E164)
	}
	first := func(col string) string {
		return col + " = CASE WHEN live_calls." + col + " = '' THEN excluded." + col + " ELSE live_calls." + col + " END"
	}
	earliest := func(col string) string {
		return col + " = CASE WHEN live_calls." + col + " = 0 OR (excluded." + col + " <> 0 AND excluded." + col + " < live_calls." + col +
			") THEN excluded." + col + " ELSE live_calls." + col + " END"
	}
	q := `INSERT INTO live_calls (` + liveCols + `) VALUES ` + values.String() + `
		ON CONFLICT (id) DO UPDATE SET ` + strings.Join([]string{
		first("call_id"), first("from_tag"), first("to_tag"), first("caller"), first("called"),
		"type = CASE WHEN excluded.type = '' THEN live_calls.type ELSE excluded.type END",
		"connected = live_calls.connected OR excluded.connected",
		earliest("start_at"), earliest("answer_at"),
		first("node"), first("platform"), first("e164"),
	}, ", ") + ` RETURNING ` + liveCols
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanLive(rows)
		if err != nil {
			return err
		}
		merged[c.ID] = c
	}
	return rows.Err()
}

func scanLive(s rowScanner) (Call, error) {
	var (
		c             Call
		start, answer int64
	)
	err := s.Scan(&c.ID, &c.CallID, &c.FromTag, &c.ToTag, &c.Caller, &c.Called, &c.Type, &c.Connected,
		&start, &answer, &c.Node, &c.Platform, &c.E164)
	if err != nil {
		return Call{}, errNoRow(err)
	}
	c.Start, c.Answer = fromMs(start), fromMs(answer)
	return c, nil
}

// finalRecord is a live call ended at end with status: its type defaults
// to voice, a call without a known start started when it was answered
// (or ended), an answered call is connected, and its duration runs from
// answer to end.
func finalRecord(c Call, end time.Time, status int) Call {
	c.End = end.Truncate(time.Millisecond)
	c.Status = status
	if c.Type == "" {
		c.Type = CallVoice
	}
	if c.Start.IsZero() {
		c.Start = c.Answer
		if c.Start.IsZero() {
			c.Start = c.End
		}
	}
	if !c.Answer.IsZero() {
		c.Connected = true
		c.DurationSeconds = DurationSeconds(c.Answer, c.End)
	}
	return c
}

// DurationSeconds is the duration of a call answered at answer and ended
// at end, in whole seconds rounded to the nearest (half a second up); 0
// when it ended before its answer.
func DurationSeconds(answer, end time.Time) int64 {
	d := end.Sub(answer)
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second/2) / time.Second)
}

const recordCols = `id, call_id, from_tag, to_tag, caller, called, type, connected, start_at, answer_at, end_at,
	duration_seconds, status, node, platform, e164`

// insertRecords writes the records that are not there yet and says
// which it wrote.
func insertRecords(ctx context.Context, tx *batchTx, chunk []Call) (map[string]bool, error) {
	const n = 16
	args := make([]any, 0, n*len(chunk))
	var values strings.Builder
	for i, c := range chunk {
		if i > 0 {
			values.WriteString(", ")
		}
		values.WriteString("(" + params(i*n+1, n) + ")")
		args = append(args, c.ID, c.CallID, c.FromTag, c.ToTag, c.Caller, c.Called, c.Type, c.Connected,
			ms(c.Start), ms(c.Answer), ms(c.End), c.DurationSeconds, c.Status, c.Node, c.Platform, c.E164)
	}
	rows, err := tx.query(ctx, `INSERT INTO call_records (`+recordCols+`) VALUES `+values.String()+`
		ON CONFLICT (id) DO NOTHING RETURNING id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	inserted := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		inserted[id] = true
	}
	return inserted, rows.Err()
}

func scanRecord(s rowScanner) (Call, error) {
	var (
		c                  Call
		start, answer, end int64
	)
	err := s.Scan(&c.ID, &c.CallID, &c.FromTag, &c.ToTag, &c.Caller, &c.Called, &c.Type, &c.Connected,
		&start, &answer, &end, &c.DurationSeconds, &c.Status, &c.Node, &c.Platform, &c.E164)
	if err != nil {
		return Call{}, errNoRow(err)
	}
	c.Start, c.Answer, c.End = fromMs(start), fromMs(answer), fromMs(end)
	return c, nil
}

// batchTx is a write transaction that prepares each statement text once:
// the multi-row statements of a batch are few texts run many times, and
// SQLite's parse of their numbered parameters is not cheap.
type batchTx struct {
	tx      *sql.Tx
	dialect string
	stmts   map[string]*sql.Stmt // closed with the transaction
}

func (b *batchTx) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := b.stmts[q]; ok {
		return st, nil
	}
	text := q
	if b.dialect == SQLite {
		text = positional(q)
	}
	st, err := b.tx.PrepareContext(ctx, text)
	if err != nil {
		return nil, err
	}
	if b.stmts == nil {
		b.stmts = map[string]*sql.Stmt{}
	}
	b.stmts[q] = st
	return st, nil
}

func (b *batchTx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := b.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (b *batchTx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := b.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// positional rewrites a statement whose parameters are $1, $2, ... $n,
// each once and in that order, with ? for each: the same statement to
// SQLite, whose driver binds n numbered parameters in time that grows as
// n², but n anonymous ones in time that grows as n. Any other statement
// is returned as it is.
func positional(q string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '$' {
			b.WriteByte(q[i])
			continue
		}
		j := i + 1
		for j < len(q) && q[j] >= '0' && q[j] <= '9' {
			j++
		}
		n++
		if q[i+1:j] != strconv.Itoa(n) {
			return q
		}
		b.WriteByte('?')
		i = j - 1
	}
	return b.String()
}

// params is "$first, $first+1, ..." n times.
func params(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", first+i)
	}
	return b.String()
}

func anys(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
