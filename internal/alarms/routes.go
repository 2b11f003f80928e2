package alarms

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/httpkit"
	"github.com/convene/convene/internal/records"
)

// Routes are the service's HTTP routes, mounted on the API: platform
// routes (closed to tenant tokens); a readonly token may list, only an
// operator acknowledge.
func (s *Service) Routes() []httpkit.Route {
	return []httpkit.Route{
		{Pattern: "GET /v1/alarms", Scope: httpkit.ScopePlatform, Handler: httpkit.HandlerFunc(s.list)},
		{Pattern: "POST /v1/alarms/{id}/ack", Scope: httpkit.ScopePlatform, Handler: httpkit.HandlerFunc(s.ack)},
	}
}

// list answers GET /v1/alarms?state=active|all (default active).
func (s *Service) list(w http.ResponseWriter, r *http.Request) *codes.Error {
	q := r.URL.Query()
	for name := range q {
		if name != "state" {
			return httpkit.BadRequest("query parameter %s is not known: give state=active or state=all", httpkit.Echo(name))
		}
	}
	state := cmp.Or(q.Get("state"), apiclient.AlarmStateActive)
	switch state {
	case apiclient.AlarmStateActive:
		httpkit.WriteJSON(w, http.StatusOK, apiclient.AlarmList{Alarms: s.Active()})
	case apiclient.AlarmStateAll:
		httpkit.WriteJSON(w, http.StatusOK, apiclient.AlarmList{Alarms: s.History(r.Context())})
	default:
		return httpkit.BadRequest("query parameter state is %s: give active or all", httpkit.Echo(state))
	}
	return nil
}

// ack answers POST /v1/alarms/{id}/ack with the alarm after.
func (s *Service) ack(w http.ResponseWriter, r *http.Request) *codes.Error {
	id := r.PathValue("id")
	if id == "" || len(id) > records.MaxAlarmField {
		return httpkit.BadRequest("alarm id %s in the path must be 1 to %d bytes", httpkit.Echo(id), records.MaxAlarmField)
	}
	a, _, err := s.Ack(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		return codes.Errorf(codes.NotFound, "alarm %s is not known: list alarms with GET /v1/alarms?state=all", httpkit.Echo(id))
	case err != nil:
		s.log.Warn("alarms: acknowledging an alarm only the records database holds failed", "alarm", id, "err", err)
		return codes.Errorf(codes.RecordsUnavailable, "the records database did not answer while acknowledging alarm %s: try again", httpkit.Echo(id))
	}
	httpkit.WriteJSON(w, http.StatusOK, a)
	return nil
}

// History lists alarms active and cleared, the latest raised first, at
// most History of them: the records database's, with this service's own
// (newer, or not yet written) over them. While the database does not
// answer, the service's own alone.
func (s *Service) History(ctx context.Context) []apiclient.Alarm {
	byID := map[string]apiclient.Alarm{}
	if s.deps.Records != nil {
		rctx, cancel := context.WithTimeout(ctx, s.opts.CheckTimeout)
		stored, err := s.deps.Records.Alarms(rctx, false, s.opts.History)
		cancel()
		if err != nil {
			s.log.Warn("alarms: the records database did not list alarms; listing those in memory", "err", err)
		}
		for _, a := range stored {
			byID[a.ID] = view(a)
		}
	}
	s.mu.Lock()
	for id, e := range s.byID {
		byID[id] = view(e.a)
	}
	s.mu.Unlock()
	out := make([]apiclient.Alarm, 0, len(byID))
	for _, a := range byID {
		out = append(out, a)
	}
	sortAlarms(out)
	if len(out) > s.opts.History {
		out = out[:s.opts.History]
	}
	return out
}

// sortAlarms puts the latest raised first.
func sortAlarms(as []apiclient.Alarm) {
	slices.SortFunc(as, func(a, b apiclient.Alarm) int {
		return cmp.Or(b.RaisedAt.Compare(a.RaisedAt), cmp.Compare(b.ID, a.ID))
	})
}
