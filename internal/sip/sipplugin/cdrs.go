package sipplugin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/cdr"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
)

// cdrStats answers GET /v1/cdrs/stats: the statistics of the calls the
// query's filters select (its page and page size aside), from the
// roll-ups.
func (rs *Records) cdrStats(w http.ResponseWriter, r *http.Request) *codes.Error {
	q, err := rs.svc.ParseQuery(r.URL.Query())
	if err != nil {
		return cdrError(err)
	}
	st, err := rs.svc.Stats(r.Context(), q)
	if err != nil {
		return cdrError(err)
	}
	httpkit.WriteJSON(w, http.StatusOK, st)
	return nil
}

// exportCDRs answers GET /v1/cdrs/export: the call records the query
// selects, every page of them from its page on, as CSV, written as they
// are read.
func (rs *Records) exportCDRs(w http.ResponseWriter, r *http.Request) *codes.Error {
	q, err := rs.svc.ParseQuery(r.URL.Query())
	if err != nil {
		return cdrError(err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="cdrs.csv"`)
	h.Set("X-Content-Type-Options", "nosniff")
	sw := &streamWriter{w: w, rc: http.NewResponseController(w)}
	err = rs.svc.Export(r.Context(), q, sw)
	switch {
	case err == nil:
		return nil
	case sw.wrote == 0:
		// Nothing sent yet: the answer can still be an error.
		h.Del("Content-Disposition")
		h.Del("X-Content-Type-Options")
		return cdrError(err)
	}
	// Part of the file was sent: end the response without its last
	// chunk, so that the client sees a cut transfer, never a short file
	// that looks whole.
	if r.Context().Err() == nil && rs.log != nil {
		rs.log.Warn("cdr: export cut short", "err", err)
	}
	panic(http.ErrAbortHandler)
}

// streamWriter sends an export's pages as they come: each write is
// flushed to the client, and the write deadline moves on while pages
// keep coming, so a long export is not cut by the server's timeout.
type streamWriter struct {
	w      io.Writer
	rc     *http.ResponseController
	wrote  int64
	moved  time.Time
	failed error
}

// exportWriteWindow is how long one write of an export may take.
const exportWriteWindow = time.Minute

func (s *streamWriter) Write(p []byte) (int, error) {
	if s.failed != nil {
		return 0, s.failed
	}
	if now := time.Now(); now.Sub(s.moved) > exportWriteWindow/4 {
		s.moved = now
		_ = s.rc.SetWriteDeadline(now.Add(exportWriteWindow)) // unsupported: the server's own timeout applies
	}
	n, err := s.w.Write(p)
	s.wrote += int64(n)
	if err == nil {
		if ferr := s.rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
			err = ferr
		}
	}
	s.failed = err
	return n, err
}

// liveCalls answers GET /v1/calls/live: the calls in progress on every
// node of the platform, newest first, {"calls":[...],"next":"..."}.
func (rs *Records) liveCalls(w http.ResponseWriter, r *http.Request) *codes.Error {
	page, size, err := cdr.ParseLivePage(r.URL.Query())
	if err != nil {
		return cdrError(err)
	}
	live, err := rs.svc.Live(r.Context(), page, size)
	if err != nil {
		return cdrError(err)
	}
	httpkit.WriteJSON(w, http.StatusOK, live)
	return nil
}

// Generation bounds of POST /v1/cdrs/generate.
const (
	MaxGenerateCount = 10_000_000
	MaxGenerateDays  = 3660
)

// generateCDRs answers POST /v1/cdrs/generate: realistic calls written
// through this server's call records, as the SIP edge writes calls
// (records, roll-ups, live-call changes). The same request writes the
// same calls: sent again, it adds nothing.
func (rs *Records) generateCDRs(w http.ResponseWriter, r *http.Request) *codes.Error {
	var req apiclient.CDRGenerateRequest
	if err := httpkit.Decode(r, &req); err != nil {
		return err
	}
	switch {
	case req.Count < 1 || req.Count > MaxGenerateCount:
		return httpkit.BadRequest("count %d: generate 1 to %d calls", req.Count, MaxGenerateCount)
	case req.Days < 1 || req.Days > MaxGenerateDays:
		return httpkit.BadRequest("days %d: spread the calls over 1 to %d days", req.Days, MaxGenerateDays)
	case req.Now.IsZero():
		return httpkit.BadRequest("now: give the time the calls end by (the same now and seed write the same calls, so a retry adds nothing)")
	case req.Platform != "" && !protocol.ValidToken(req.Platform):
		return httpkit.BadRequest("platform %s: a platform's moid is 1 to 64 letters, digits, '-' or '_'", httpkit.Echo(req.Platform))
	case len(req.Nodes) > 64:
		return httpkit.BadRequest("nodes: at most 64")
	}
	for _, n := range req.Nodes {
		if !protocol.ValidToken(n) {
			return httpkit.BadRequest("nodes: %s is not a node name: 1 to 64 letters, digits, '-' or '_'", httpkit.Echo(n))
		}
	}
	o := cdr.GenerateOptions{Count: req.Count, Days: req.Days, Seed: req.Seed, Now: req.Now, Location: rs.svc.Location(),
		Platform: firstOf(req.Platform, rs.platform), Nodes: req.Nodes}
	sum, err := cdr.Generate(r.Context(), rs.svc, o)
	if err != nil {
		if r.Context().Err() != nil {
			return codes.Errorf(codes.BadRequest, "the generation was cancelled after %d calls: send the same request again to finish it", sum.Calls)
		}
		return recordsError(err, fmt.Sprintf("the generation stopped after %d calls", sum.Calls))
	}
	httpkit.WriteJSON(w, http.StatusOK, apiclient.CDRGenerated{Calls: sum.Calls, Voice: sum.Voice, Video: sum.Video,
		Connected: sum.Connected, Conference: sum.Conference, ElapsedMS: sum.Elapsed.Milliseconds()})
	return nil
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
