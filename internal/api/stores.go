package api

import (
	"context"
	"errors"
	"net/http"
	"sort"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/store"
)

// A conference's data lives in the store of its source platform (the
// platform of its user domain): this platform's, or, for a master platform
// whose conferences run here, the master's (000 §2.3.2). Reads look where
// the data is.

// storeOf is a platform's store as this API reaches it, or nil.
func (s *Server) storeOf(platform string) *store.Store {
	if platform == "" || platform == s.opts.Platform {
		return s.store
	}
	if s.peerStore != nil {
		return s.peerStore(platform)
	}
	return nil
}

// domainStore is the store of a user domain's platform; unknown domains are
// looked up in this platform's store (which answers DOMAIN_NOT_FOUND).
func (s *Server) domainStore(moid string) *store.Store {
	if d, ok := s.cfg.DomainByMoid(moid); ok {
		if st := s.storeOf(d.Platform); st != nil {
			return st
		}
	}
	return s.store
}

// conferenceAnywhere reads a conference from this platform's store, then
// from the masters' stores this platform reaches.
func (s *Server) conferenceAnywhere(ctx context.Context, e164 string) (protocol.Conference, *store.Store, error) {
	c, err := s.store.Conference(ctx, e164)
	if err == nil || !errors.Is(err, store.ErrConfNotFound) {
		return c, s.store, err
	}
	for _, p := range s.cfg.Platforms {
		if p.Moid == s.opts.Platform {
			continue
		}
		st := s.storeOf(p.Moid)
		if st == nil {
			continue
		}
		if c2, err2 := st.Conference(ctx, e164); err2 == nil {
			return c2, st, nil
		}
	}
	return c, s.store, err
}

// platformConferences lists the conferences a platform's store holds, each
// with where it really runs (000 §8: running lists by platform, for readers
// outside the platform). ?state= keeps one state; ?page_size= and ?after=
// ask for one page (page.go).
func (s *Server) platformConferences(w http.ResponseWriter, r *http.Request) *codes.Error {
	moid, aerr := httpkit.PathToken(r, "moid", "domain")
	if aerr != nil {
		return aerr
	}
	state := r.URL.Query().Get("state")
	if aerr := checkState(state); aerr != nil {
		return aerr
	}
	page, paged, aerr := pageQuery(r)
	if aerr != nil {
		return aerr
	}
	if _, ok := s.cfg.PlatformByMoid(moid); !ok {
		return codes.Errorf(codes.NotFound, "no platform %q in the topology", moid)
	}
	st := s.storeOf(moid)
	if st == nil {
		return codes.Errorf(codes.StoreUnreachable, "platform %q's store is not reachable from platform %q; ask %q's own API", moid, s.opts.Platform, moid)
	}
	if paged {
		return platformConferencePage(w, r, st, state, page)
	}
	confs, err := st.AllConferences(r.Context())
	if err != nil {
		return store.Refusal(err, "", "")
	}
	out := apiclient.ConferenceList{Conferences: make([]apiclient.Conference, 0, len(confs))}
	for i := range confs {
		if state != "" && confs[i].State != state {
			continue
		}
		out.Conferences = append(out.Conferences, conferenceView(&confs[i]))
	}
	sort.Slice(out.Conferences, func(i, j int) bool { return out.Conferences[i].E164 < out.Conferences[j].E164 })
	httpkit.WriteJSON(w, http.StatusOK, out)
	return nil
}
