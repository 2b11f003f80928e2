package console

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/convene/convene/internal/apiclient"
)

// callQuery is the calls page's query form (seed 003's fields): a day
// range in the platform's time zone (empty: today; a first day alone:
// from it through today), type, caller and
// called (exact, or a prefix ending in *), connected, and the page.
type callQuery struct {
	From, To, Type, Caller, Called, Connected, Page string
}

func callQueryOf(q url.Values) callQuery {
	g := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	return callQuery{From: g("from"), To: g("to"), Type: g("type"), Caller: g("caller"), Called: g("called"),
		Connected: g("connected"), Page: g("page")}
}

// apiValues are the query of the API's records routes for q, its day
// range turned into times in zone.
func (q callQuery) apiValues(zone *time.Location) (url.Values, error) {
	v := url.Values{}
	day := func(s string) (time.Time, error) {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, nil
		}
		t, err := time.ParseInLocation("2006-01-02", s, zone)
		if err != nil {
			return time.Time{}, errors.New("give days as YYYY-MM-DD")
		}
		return t, nil
	}
	if q.From != "" || q.To != "" {
		// From a day alone: through today; to a day alone: that day.
		from, to := q.From, q.To
		if from == "" {
			from = to
		}
		if to == "" {
			to = time.Now().In(zone).Format("2006-01-02")
		}
		start, err := day(from)
		if err != nil {
			return nil, errors.New("BAD_REQUEST: from: " + err.Error())
		}
		end, err := day(to)
		if err != nil {
			return nil, errors.New("BAD_REQUEST: to: " + err.Error())
		}
		if !strings.Contains(to, "T") {
			end = end.AddDate(0, 0, 1) // the last day is included
		}
		v.Set("start", start.Format(time.RFC3339))
		v.Set("end", end.Format(time.RFC3339))
	}
	for k, s := range map[string]string{"type": q.Type, "caller": q.Caller, "called": q.Called, "connected": q.Connected} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v, nil
}

// chartData is what the chart script draws: one bar pair per bucket.
type chartData struct {
	Bucket string   `json:"bucket"`
	Labels []string `json:"labels"`
	Voice  []int64  `json:"voice"`
	Video  []int64  `json:"video"`
}

type callsData struct {
	Query     callQuery
	Live      []apiclient.CDR
	LiveErr   string
	Stats     *apiclient.CDRStats
	StatsErr  string
	Max       int64
	Chart     chartData
	Records   []apiclient.CDR
	Next      string
	QueryErr  string
	ExportURL string
	FirstPage string
}

func (c *Console) calls(w http.ResponseWriter, r *http.Request, s *session) {
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	q := callQueryOf(r.URL.Query())
	d := callsData{Query: q}
	zone := time.UTC
	if q.From != "" || q.To != "" {
		// The platform's zone, from the answer of a query of today.
		var today apiclient.CDRStats
		if err := u.do(http.MethodGet, "/v1/cdrs/stats", nil, &today); err == nil && !today.Start.IsZero() {
			zone = today.Start.Location()
		}
	}
	v, err := q.apiValues(zone)
	if err != nil {
		d.QueryErr = err.Error()
		c.render(w, r, http.StatusBadRequest, "calls", s, "Calls", d)
		return
	}
	page := url.Values{}
	for k := range v {
		page.Set(k, v.Get(k))
	}
	if q.Page != "" {
		page.Set("page", q.Page)
	}
	page.Set("page_size", strconv.Itoa(c.opts.PageSize))
	var stats apiclient.CDRStats
	var list apiclient.CDRPage
	var live apiclient.LiveCalls
	var statsErr, listErr, liveErr error
	gather(
		func() { liveErr = u.do(http.MethodGet, "/v1/calls/live", nil, &live) },
		func() { statsErr = u.do(http.MethodGet, withQuery("/v1/cdrs/stats", v), nil, &stats) },
		func() { listErr = u.do(http.MethodGet, withQuery("/v1/cdrs", page), nil, &list) },
	)
	d.Live, d.LiveErr = live.Calls, apiError(liveErr)
	d.StatsErr, d.QueryErr = apiError(statsErr), apiError(listErr)
	if statsErr == nil {
		d.Stats = &stats
		d.Chart.Bucket = stats.Bucket
		for _, b := range stats.Buckets {
			label := b.Start.Format("2006-01-02")
			if stats.Bucket == "hour" {
				label = b.Start.Format("15:04")
			}
			d.Chart.Labels = append(d.Chart.Labels, label)
			d.Chart.Voice = append(d.Chart.Voice, b.Voice.Count)
			d.Chart.Video = append(d.Chart.Video, b.Video.Count)
			d.Max = max(d.Max, b.Count)
		}
	}
	d.Records = list.CDRs
	if list.Next != "" {
		nq := r.URL.Query()
		nq.Set("page", list.Next)
		d.Next = "/calls?" + nq.Encode()
	}
	if q.Page != "" {
		fq := r.URL.Query()
		fq.Del("page")
		d.FirstPage = withQuery("/calls", fq)
	}
	d.ExportURL = withQuery("/calls.csv", r.URL.Query())
	c.render(w, r, http.StatusOK, "calls", s, "Calls", d)
}

func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// exportCalls streams the API's CSV export of the query, as it comes.
func (c *Console) exportCalls(w http.ResponseWriter, r *http.Request, s *session) {
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	q := callQueryOf(r.URL.Query())
	zone := time.UTC
	var today apiclient.CDRStats
	if err := u.do(http.MethodGet, "/v1/cdrs/stats", nil, &today); err == nil && !today.Start.IsZero() {
		zone = today.Start.Location()
	}
	v, err := q.apiValues(zone)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// The export may run longer than a page: no deadline but the
	// browser's.
	resp, err := u.open(r.Context(), http.MethodGet, withQuery("/v1/cdrs/export", v), nil, "text/csv")
	if err != nil {
		http.Error(w, apiError(err), http.StatusBadGateway)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="calls.csv"`)
	_, _ = io.Copy(w, resp.Body)
}

// ladderRow is one log line of a call: a message between two columns of
// the ladder (Before empty cells, an arrow over Span cells, After empty
// cells), or a note on the node (Span 0).
type ladderRow struct {
	Time                time.Time
	Level               string
	Message             string
	First               string // the message's first line
	Before, Span, After []struct{}
	Right               bool
}

type callLogData struct {
	Record  apiclient.CDR
	Err     string
	Columns []string
	Rows    []ladderRow
	LogErr  string
}

func (c *Console) callLog(w http.ResponseWriter, r *http.Request, s *session) {
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	id := r.PathValue("id")
	var d callLogData
	var lg apiclient.CallLog
	var recErr, logErr error
	path := "/v1/cdrs/" + url.PathEscape(id)
	gather(
		func() { recErr = u.do(http.MethodGet, path, nil, &d.Record) },
		func() { logErr = u.do(http.MethodGet, path+"/log", nil, &lg) },
	)
	d.Err, d.LogErr = apiError(recErr), apiError(logErr)
	d.Columns, d.Rows = ladder(lg.Lines)
	status := http.StatusOK
	if recErr != nil && logErr != nil {
		status = http.StatusNotFound
	}
	c.render(w, r, status, "calllog", s, "Call "+id, d)
}

// ladder lays a call's log lines out as a ladder: a column per party
// (nodes and peers, in the order they appear), a row per line.
func ladder(lines []apiclient.CallLogLine) ([]string, []ladderRow) {
	var cols []string
	index := map[string]int{}
	col := func(name string) int {
		if i, ok := index[name]; ok {
			return i
		}
		index[name] = len(cols)
		cols = append(cols, name)
		return index[name]
	}
	for _, l := range lines {
		if l.Direction == "in" && l.Peer != "" {
			col(l.Peer)
			col(l.Node)
		} else {
			col(l.Node)
			if l.Peer != "" {
				col(l.Peer)
			}
		}
	}
	rows := make([]ladderRow, 0, len(lines))
	for _, l := range lines {
		first, _, _ := strings.Cut(l.Message, "\n")
		row := ladderRow{Time: l.Time, Level: l.Level, Message: l.Message, First: first}
		n := index[l.Node]
		from, to := n, n
		if p, ok := index[l.Peer]; ok && l.Peer != "" && (l.Direction == "in" || l.Direction == "out") {
			if l.Direction == "in" {
				from = p
			} else {
				to = p
			}
		}
		lo, hi := min(from, to), max(from, to)
		row.Right = to >= from
		row.Before = make([]struct{}, lo)
		row.Span = make([]struct{}, hi-lo+1)
		row.After = make([]struct{}, len(cols)-hi-1)
		rows = append(rows, row)
	}
	return cols, rows
}

type alarmsData struct {
	Active, History []apiclient.Alarm
	Err             string
}

func (c *Console) alarms(w http.ResponseWriter, r *http.Request, s *session) {
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	var al apiclient.AlarmList
	err = u.do(http.MethodGet, "/v1/alarms?state=all", nil, &al)
	d := alarmsData{Err: apiError(err)}
	for _, a := range al.Alarms {
		if a.ClearedAt == nil {
			d.Active = append(d.Active, a)
		} else {
			d.History = append(d.History, a)
		}
	}
	c.render(w, r, http.StatusOK, "alarms", s, "Alarms", d)
}

func (c *Console) ackAlarm(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		back(w, r, s, "/alarms", err.Error())
		return
	}
	msg := "Alarm " + id + " acknowledged."
	if err := u.do(http.MethodPost, "/v1/alarms/"+url.PathEscape(id)+"/ack", nil, nil); err != nil {
		msg = apiError(err)
	}
	back(w, r, s, "/alarms", msg)
}
