package cdr

import (
	"context"
	"errors"
	"maps"
	"net/url"
	"slices"
	"time"

	"github.com/convene/convene/internal/records"
)

// CDR is a call as the API shows it: a call record, or a live call (end
// null, duration 0). Times are RFC 3339 in the platform's time zone.
type CDR struct {
	ID              string     `json:"id"`
	CallID          string     `json:"call_id"`
	Caller          string     `json:"caller"`
	Called          string     `json:"called"`
	Type            string     `json:"type"`
	Connected       bool       `json:"connected"`
	Start           time.Time  `json:"start"`
	Answer          *time.Time `json:"answer"`
	End             *time.Time `json:"end"`
	DurationSeconds int64      `json:"duration_seconds"`
	Status          int        `json:"status"`
	Node            string     `json:"node"`
	Platform        string     `json:"platform"`
	E164            string     `json:"e164"`
}

// Page is a page of call records: {"cdrs":[...],"next":"..."}; Next is
// the page parameter of the following page, "" after the last.
type Page struct {
	CDRs []CDR  `json:"cdrs"`
	Next string `json:"next"`
}

// LivePage is a page of live calls: {"calls":[...],"next":"..."}.
type LivePage struct {
	Calls []CDR  `json:"calls"`
	Next  string `json:"next"`
}

func (s *Service) cdr(c records.Call) CDR {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.In(s.loc)
		return &t
	}
	out := CDR{
		ID: c.ID, CallID: c.CallID, Caller: c.Caller, Called: c.Called, Type: c.Type, Connected: c.Connected,
		Answer: opt(c.Answer), End: opt(c.End), DurationSeconds: c.DurationSeconds, Status: c.Status,
		Node: c.Node, Platform: c.Platform, E164: c.E164,
	}
	if !c.Start.IsZero() {
		out.Start = c.Start.In(s.loc)
	}
	return out
}

// filter is the records filter of a query, its page aside.
func (q Query) filter() records.CallFilter {
	return records.CallFilter{From: q.Start, To: q.End, Type: q.Type, Connected: q.Connected,
		Caller: q.Caller.match(), Called: q.Called.match()}
}

// Query lists the call records q selects, newest first (by start, then
// id), one page of them. The order is stable: walking the pages from
// the first to the one whose Next is "" meets every record that existed
// when the walk began, once, whatever is written meanwhile.
func (s *Service) Query(ctx context.Context, q Query) (Page, error) {
	f := q.filter()
	size := pageSize(q.PageSize)
	if q.Page != "" {
		c, err := decodeCursor(q.Page)
		if err != nil {
			return Page{}, err
		}
		f.After = &c
	}
	f.Limit = size + 1 // one more says whether a next page exists
	calls, err := s.db.CallRecords(ctx, f)
	if err != nil {
		return Page{}, err
	}
	p := Page{CDRs: make([]CDR, 0, min(len(calls), size))}
	for i, c := range calls {
		if i == size {
			last := calls[size-1]
			p.Next = encodeCursor(records.CallCursor{Start: last.Start, ID: last.ID})
			break
		}
		p.CDRs = append(p.CDRs, s.cdr(c))
	}
	return p, nil
}

func pageSize(n int) int {
	switch {
	case n <= 0:
		return DefaultPageSize
	case n > MaxPageSize:
		return MaxPageSize
	}
	return n
}

// Record reads one call record. Errors: ErrNotFound (also for a live
// call: its record is written when it ends).
func (s *Service) Record(ctx context.Context, id string) (CDR, error) {
	if !validID(id) {
		return CDR{}, ErrNotFound
	}
	c, err := s.db.CallRecord(ctx, id)
	if errors.Is(err, records.ErrNotFound) {
		return CDR{}, ErrNotFound
	}
	if err != nil {
		return CDR{}, err
	}
	return s.cdr(c), nil
}

// LogEntry is a log line as the API shows it.
type LogEntry struct {
	Time      time.Time `json:"time"`
	Level     string    `json:"level"`
	Node      string    `json:"node"`
	Direction string    `json:"direction,omitempty"`
	Peer      string    `json:"peer,omitempty"`
	CallID    string    `json:"call_id,omitempty"`
	E164      string    `json:"e164,omitempty"`
	Message   string    `json:"message"`
}

// CallLog is a call's log: {"id","call_id","lines":[...]}.
type CallLog struct {
	ID     string     `json:"id"`
	CallID string     `json:"call_id"`
	Lines  []LogEntry `json:"lines"`
}

// maxLogLines bounds the lines one answer carries.
const maxLogLines = 10000

// CallLog reads the log lines of a call, ended or live, oldest first.
// Errors: ErrNotFound.
func (s *Service) CallLog(ctx context.Context, id string) (CallLog, error) {
	if !validID(id) {
		return CallLog{}, ErrNotFound
	}
	c, err := s.db.CallRecord(ctx, id)
	if errors.Is(err, records.ErrNotFound) {
		c, err = s.db.LiveCall(ctx, id)
	}
	if errors.Is(err, records.ErrNotFound) {
		return CallLog{}, ErrNotFound
	}
	if err != nil {
		return CallLog{}, err
	}
	lines, err := s.db.LogLines(ctx, records.LogFilter{CallID: c.CallID, Limit: maxLogLines})
	if err != nil {
		return CallLog{}, err
	}
	return CallLog{ID: id, CallID: c.CallID, Lines: s.entries(lines)}, nil
}

// ConferenceLog reads the log lines of a conference since a time (zero:
// all kept), oldest first, at most limit (0 or more than 10,000: 10,000).
func (s *Service) ConferenceLog(ctx context.Context, e164 string, since time.Time, limit int) ([]LogEntry, error) {
	if limit <= 0 || limit > maxLogLines {
		limit = maxLogLines
	}
	lines, err := s.db.LogLines(ctx, records.LogFilter{E164: e164, Since: since, Limit: limit})
	if err != nil {
		return nil, err
	}
	return s.entries(lines), nil
}

func (s *Service) entries(lines []records.LogLine) []LogEntry {
	out := make([]LogEntry, 0, len(lines))
	for _, l := range lines {
		out = append(out, LogEntry{Time: l.At.In(s.loc), Level: l.Level, Node: l.Node, Direction: l.Attrs["dir"],
			Peer: l.Attrs["peer"], CallID: l.CallID, E164: l.E164, Message: l.Message})
	}
	return out
}

// ParseLivePage reads page and page_size (as for Query) for the live
// calls; any other parameter, except those named in also, is refused.
func ParseLivePage(v url.Values, also ...string) (page string, size int, err error) {
	for _, name := range slices.Sorted(maps.Keys(v)) {
		if name != "page" && name != "page_size" && !slices.Contains(also, name) {
			return "", 0, paramErr(name, "is not a parameter of the live calls: use page, page_size")
		}
	}
	q, err := ParseQuery(url.Values{"page": v["page"], "page_size": v["page_size"]}, time.Now(), time.UTC)
	return q.Page, q.PageSize, err
}

// Live lists the calls in progress (on every node of the platform),
// newest first, a page of them; page is the previous page's Next.
func (s *Service) Live(ctx context.Context, page string, size int) (LivePage, error) {
	size = pageSize(size)
	var after *records.CallCursor
	if page != "" {
		c, err := decodeCursor(page)
		if err != nil {
			return LivePage{}, err
		}
		after = &c
	}
	calls, err := s.db.LiveCalls(ctx, after, size+1)
	if err != nil {
		return LivePage{}, err
	}
	p := LivePage{Calls: make([]CDR, 0, min(len(calls), size))}
	for i, c := range calls {
		if i == size {
			last := calls[size-1]
			p.Next = encodeCursor(records.CallCursor{Start: last.Start, ID: last.ID})
			break
		}
		p.Calls = append(p.Calls, s.cdr(c))
	}
	return p, nil
}
