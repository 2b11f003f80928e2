package api

import (
	"net/http"
	"strconv"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// The conference lists answer in pages when asked: page_size (1 to
// apiclient.MaxConferencePageSize) conferences ordered by number, after
// the number the previous page ended with. Without page_size or after a
// list is the whole list, as it always was.

// defaultPageSize is a page's size when a request names only after.
const defaultPageSize = 100

// pageQuery reads page_size and after; paged is false when the request
// names neither. An empty after is the first page.
func pageQuery(r *http.Request) (q store.PageQuery, paged bool, aerr *codes.Error) {
	v := r.URL.Query()
	size, after := v.Get("page_size"), v.Get("after")
	if !v.Has("page_size") && after == "" {
		return q, false, nil
	}
	q.Size = defaultPageSize
	if v.Has("page_size") {
		n, err := strconv.Atoi(size)
		if err != nil || n < 1 || n > apiclient.MaxConferencePageSize {
			return q, false, httpkit.BadRequest("query parameter \"page_size\" must be a whole number from 1 to %d, not %s",
				apiclient.MaxConferencePageSize, httpkit.Echo(size))
		}
		q.Size = n
	}
	if after != "" {
		if !protocol.ValidE164(after) {
			return q, false, httpkit.BadRequest("query parameter \"after\" must be the number the previous page ended with (its \"next\"): 3 to 32 digits, not %s",
				httpkit.Echo(after))
		}
		q.After = after
	}
	return q, true, nil
}

// writePage answers one page of conferences.
func writePage(w http.ResponseWriter, p store.ConferencePage) {
	out := apiclient.ConferencePage{Conferences: make([]apiclient.Conference, 0, len(p.Conferences)), Next: p.Next, Counts: p.Counts}
	for i := range p.Conferences {
		out.Conferences = append(out.Conferences, conferenceView(&p.Conferences[i]))
	}
	httpkit.WriteJSON(w, http.StatusOK, out)
}

// platformConferencePage answers one page of the conferences of a
// platform's store; reading it costs the page, not the whole list.
func platformConferencePage(w http.ResponseWriter, r *http.Request, st *store.Store, state string, q store.PageQuery) *codes.Error {
	q.State = state
	p, err := st.ConferencePage(r.Context(), q)
	if err != nil {
		return store.Refusal(err, "", "")
	}
	writePage(w, p)
	return nil
}

// domainConferencePage answers one page of a domain's conferences with
// the filters of the whole list.
func (s *Server) domainConferencePage(w http.ResponseWriter, r *http.Request, moid string, f store.ListFilter, state string, q store.PageQuery) *codes.Error {
	q.State = state
	if f != (store.ListFilter{}) {
		q.Keep = f.Keep
	}
	p, err := s.domainStore(moid).DomainConferencePage(r.Context(), moid, q)
	if err != nil {
		return store.Refusal(err, "", moid)
	}
	if len(p.Conferences) == 0 {
		if aerr := s.domainExists(r.Context(), moid); aerr != nil {
			return aerr
		}
	}
	writePage(w, p)
	return nil
}
