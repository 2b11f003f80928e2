package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/records"
)

// GET /v1/logs lists the log lines kept in the records database: the
// services' structured lines about a call or a conference (internal/logkeep)
// and the calls' own logs, oldest first.

const (
	defaultLogLimit = 1000
	maxLogLimit     = 10000
	maxCallIDLen    = 256
)

// logLevels are the levels in order, as the records keep them.
var logLevels = []string{"DEBUG", "INFO", "WARN", "ERROR"}

// logQuery reads the filters of GET /v1/logs; an error names the
// parameter.
func logQuery(r *http.Request) (records.LogFilter, *codes.Error) {
	q := r.URL.Query()
	f := records.LogFilter{Limit: defaultLogLimit}
	for name, vs := range q {
		switch name {
		case "e164", "call_id", "level", "since", "limit":
			if len(vs) > 1 {
				return f, httpkit.BadRequest("query parameter %q is given %d times: give it once", name, len(vs))
			}
		default:
			return f, httpkit.BadRequest("query parameter %s is not one of the logs': use e164, call_id, level, since, limit", httpkit.Echo(name))
		}
	}
	if v := q.Get("e164"); v != "" {
		if !protocol.ValidE164(v) {
			return f, httpkit.BadRequest("query parameter \"e164\" must be 3 to 32 digits, not %s", httpkit.Echo(v))
		}
		f.E164 = v
	}
	if v := q.Get("call_id"); v != "" {
		if len(v) > maxCallIDLen || strings.IndexFunc(v, func(c rune) bool { return !unicode.IsPrint(c) || c == unicode.ReplacementChar }) >= 0 {
			return f, httpkit.BadRequest("query parameter \"call_id\" must be a SIP Call-ID: 1 to %d printable characters", maxCallIDLen)
		}
		f.CallID = v
	}
	if v := q.Get("level"); v != "" {
		i := slices.Index(logLevels, strings.ToUpper(v))
		if i < 0 {
			return f, httpkit.BadRequest("query parameter \"level\" must be debug, info, warn or error, not %s", httpkit.Echo(v))
		}
		f.Levels = logLevels[i:]
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return f, httpkit.BadRequest("query parameter \"since\" must be an RFC 3339 time (2026-01-02T15:04:05Z), not %s", httpkit.Echo(v))
		}
		f.Since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLogLimit {
			return f, httpkit.BadRequest("query parameter \"limit\" must be between 1 and %d, not %s", maxLogLimit, httpkit.Echo(v))
		}
		f.Limit = n
	}
	return f, nil
}

// listLogs answers GET /v1/logs?e164=&call_id=&level=&since=&limit=.
func (s *Server) listLogs(w http.ResponseWriter, r *http.Request) *codes.Error {
	f, aerr := logQuery(r)
	if aerr != nil {
		return aerr
	}
	if s.records == nil {
		return codes.Errorf(codes.RecordsUnavailable, "this API keeps no records database, where logs are kept: give its host a records resource (records: in the host file and the API's section, or --records)")
	}
	lines, err := s.records.LogLines(r.Context(), f)
	if err != nil {
		s.log.Warn("api: reading log lines failed", "err", err)
		return codes.Errorf(codes.RecordsUnavailable, "the records database did not answer: retry in a moment")
	}
	out := apiclient.LogList{Lines: make([]apiclient.LogLine, 0, len(lines))}
	for _, l := range lines {
		out.Lines = append(out.Lines, apiclient.LogLine{Time: l.At, Level: l.Level, Node: l.Node, CallID: l.CallID,
			E164: l.E164, Message: l.Message, Attrs: l.Attrs})
	}
	httpkit.WriteJSON(w, http.StatusOK, out)
	return nil
}
