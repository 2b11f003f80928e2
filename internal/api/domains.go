package api

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/store"
)

// domainConferences lists a domain's conferences, by number, with the
// filters of 001 §2.1: public only, what a terminal may see, and state.
func (s *Server) domainConferences(w http.ResponseWriter, r *http.Request) *codes.Error {
	moid, aerr := httpkit.PathToken(r, "moid", "domain")
	if aerr != nil {
		return aerr
	}
	f, state, aerr := listQuery(r)
	if aerr != nil {
		return aerr
	}
	page, paged, aerr := pageQuery(r)
	if aerr != nil {
		return aerr
	}
	if paged {
		return s.domainConferencePage(w, r, moid, f, state, page)
	}
	all, err := s.domainStore(moid).DomainConferences(r.Context(), moid)
	if err != nil {
		return store.Refusal(err, "", moid)
	}
	if len(all) == 0 {
		if aerr := s.domainExists(r.Context(), moid); aerr != nil {
			return aerr
		}
	}
	out := apiclient.ConferenceList{Conferences: make([]apiclient.Conference, 0, len(all))}
	for i := range all {
		c := &all[i]
		if !f.Keep(c) || (state != "" && c.State != state) {
			continue
		}
		out.Conferences = append(out.Conferences, conferenceView(c))
	}
	sort.Slice(out.Conferences, func(i, j int) bool { return out.Conferences[i].E164 < out.Conferences[j].E164 })
	httpkit.WriteJSON(w, http.StatusOK, out)
	return nil
}

// domainExists tells an empty list from an unknown domain.
func (s *Server) domainExists(ctx context.Context, moid string) *codes.Error {
	if _, err := s.domainStore(moid).Domain(ctx, moid); err != nil {
		return store.Refusal(err, "", moid)
	}
	return nil
}

func (s *Server) getLicense(w http.ResponseWriter, r *http.Request) *codes.Error {
	moid, aerr := httpkit.PathToken(r, "moid", "domain")
	if aerr != nil {
		return aerr
	}
	u, err := s.domainStore(moid).License(r.Context(), moid)
	if err != nil {
		return store.Refusal(err, "", moid)
	}
	httpkit.WriteJSON(w, http.StatusOK, licenseView(moid, u))
	return nil
}

// setLicense changes the limits of the classes given; a limit below the
// count refuses new conferences of that class and ends none.
func (s *Server) setLicense(w http.ResponseWriter, r *http.Request) *codes.Error {
	moid, aerr := httpkit.PathToken(r, "moid", "domain")
	if aerr != nil {
		return aerr
	}
	var q apiclient.SetLicenseRequest
	if err := httpkit.Decode(r, &q); err != nil {
		return err
	}
	if err := checkLicense(&q); err != nil {
		return err
	}
	if err := s.domainStore(moid).SetLicenseLimits(r.Context(), moid, q.Limits); err != nil {
		return store.Refusal(err, "", moid)
	}
	s.log.Info("licence limits set", "domain", moid, "limits", q.Limits.Canonical())
	u, err := s.domainStore(moid).License(r.Context(), moid)
	if err != nil {
		return store.Refusal(err, "", moid)
	}
	httpkit.WriteJSON(w, http.StatusOK, licenseView(moid, u))
	return nil
}

// listQuery reads the filters of a domain's conference list: public_only,
// terminal (an alias of at most maxAliasLen characters) and state.
func listQuery(r *http.Request) (store.ListFilter, string, *codes.Error) {
	var (
		f    store.ListFilter
		aerr *codes.Error
	)
	if f.PublicOnly, aerr = httpkit.QueryBool(r, "public_only"); aerr != nil {
		return f, "", aerr
	}
	q := r.URL.Query()
	f.Terminal = q.Get("terminal")
	if utf8.RuneCountInString(f.Terminal) > maxAliasLen || (f.Terminal != "" && strings.TrimSpace(f.Terminal) == "") {
		return f, "", httpkit.BadRequest("query parameter \"terminal\" must be an alias or e164 of at most %d characters", maxAliasLen)
	}
	state := q.Get("state")
	if aerr := checkState(state); aerr != nil {
		return f, "", aerr
	}
	return f, state, nil
}
