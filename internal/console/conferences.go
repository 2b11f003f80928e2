package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
)

// confFilter is the conferences page's filter, from its query; After is
// the number the page starts after (the previous page's last).
type confFilter struct {
	Domain, State, Platform, Name, After string
}

func filterOf(q url.Values) confFilter {
	g := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	return confFilter{Domain: g("domain"), State: g("state"), Platform: g("platform"), Name: g("name"), After: g("after")}
}

// query is the filter as a query string, on the page after the number
// after ("" the first page).
func (f confFilter) query(after string) string {
	v := url.Values{}
	for k, s := range map[string]string{"domain": f.Domain, "state": f.State, "platform": f.Platform, "name": f.Name, "after": after} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if len(v) == 0 {
		return "/conferences"
	}
	return "/conferences?" + v.Encode()
}

type conferencesData struct {
	Filter      confFilter
	Platforms   []apiclient.Platform
	Domains     []config.Domain
	States      []string
	Conferences []apiclient.Conference
	// Total is the conferences the filter keeps, when known (-1 not:
	// a name search).
	Total int
	// From and To are the first and last numbers shown.
	From, To    string
	First, Next string
	Err         string
}

func (c *Console) conferences(w http.ResponseWriter, r *http.Request, s *session) {
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	f := filterOf(r.URL.Query())
	d := conferencesData{Filter: f, States: []string{"running", "creating", "pending-restore"}, Total: -1}
	for _, dm := range c.domains {
		if s.role != config.RoleTenant || contains(s.domains, dm.Moid) {
			d.Domains = append(d.Domains, dm)
		}
	}
	var srcs []pageSource
	switch {
	case s.role == config.RoleTenant || f.Domain != "":
		if s.role != config.RoleTenant {
			d.Platforms, err = u.api().Platforms(u.ctx)
			d.Err = apiError(err)
		}
		for _, dm := range d.Domains {
			if f.Domain == "" || dm.Moid == f.Domain {
				srcs = append(srcs, domainSource(u.api(), dm.Moid, f.State))
			}
		}
	default:
		d.Platforms, err = u.api().Platforms(u.ctx)
		d.Err = apiError(err)
		pl := f.Platform
		if pl == "" {
			pl = localPlatform(d.Platforms)
		}
		if pl != "" {
			srcs = append(srcs, platformSource(u.api(), pl, f.State))
		}
	}
	if len(srcs) > 0 {
		src := mergedSource(srcs)
		if f.Name != "" {
			src = matching(src, f.Name)
		}
		p, err := src(u.ctx, f.After, min(c.opts.PageSize, apiclient.MaxConferencePageSize))
		if err != nil {
			d.Err = apiError(err)
		}
		d.Conferences = p.Conferences
		if n := len(p.Conferences); n > 0 {
			d.From, d.To = p.Conferences[0].E164, p.Conferences[n-1].E164
		}
		if p.Next != "" {
			d.Next = f.query(p.Next)
		}
		if f.Name == "" && p.Counts != nil {
			d.Total = 0
			for st, n := range p.Counts {
				if f.State == "" || st == f.State {
					d.Total += n
				}
			}
		}
	}
	if f.After != "" {
		d.First = f.query("")
	}
	c.render(w, r, http.StatusOK, "conferences", s, "Conferences", d)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// breakoutRoom is a breakout room with who is in it now.
type breakoutRoom struct {
	ID    uint32
	Name  string
	Mixer string
	Users []uint32
}

type hearingRow struct {
	User  uint32
	Room  uint32
	Hears string
}

type conferenceData struct {
	Conf        apiclient.Conference
	Err         string
	Breakout    bool
	BreakoutErr string
	Rooms       []breakoutRoom
	Hearing     []hearingRow
}

func (c *Console) conference(w http.ResponseWriter, r *http.Request, s *session) {
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	e164 := r.PathValue("e164")
	var d conferenceData
	var bv breakoutView
	var av audioView
	var bErr, aErr error
	path := "/v1/conferences/" + url.PathEscape(e164) + "/breakout"
	gather(
		func() {
			var err error
			d.Conf, err = u.api().Conference(u.ctx, e164)
			d.Err = apiError(err)
		},
		func() { bErr = u.do(http.MethodGet, path, nil, &bv) },
		func() { aErr = u.do(http.MethodGet, path+"/audio", nil, &av) },
	)
	status := http.StatusOK
	if d.Err != "" {
		status = http.StatusNotFound
		d.Conf.E164 = e164
	}
	var ae *apiclient.Error
	switch {
	case bErr != nil && errors.As(bErr, &ae) && ae.Status == http.StatusNotFound && ae.Code != "NOT_FOUND":
		// No breakout plan for this conference.
	case bErr != nil:
		d.BreakoutErr = apiError(bErr)
	default:
		d.Breakout = bv.Active
		for _, ri := range bv.RoomInfos {
			d.Breakout = d.Breakout || ri.RoomID != 300
		}
		where := map[uint32][]uint32{}
		for _, us := range bv.Users {
			if us.Online {
				where[us.CurrentRoom] = append(where[us.CurrentRoom], us.UserID)
			}
		}
		d.Rooms = append(d.Rooms, breakoutRoom{ID: 300, Name: "main room", Mixer: "server", Users: where[300]})
		for _, ri := range bv.RoomInfos {
			if ri.RoomID == 300 {
				continue
			}
			mixer := "server"
			if ri.MixerMode == 1 {
				mixer = "client"
			}
			d.Rooms = append(d.Rooms, breakoutRoom{ID: ri.RoomID, Name: ri.Name, Mixer: mixer, Users: where[ri.RoomID]})
		}
		if aErr == nil {
			for _, h := range av.Hearing {
				hs := make([]string, len(h.Hears))
				for i, x := range h.Hears {
					hs[i] = strconv.FormatUint(uint64(x), 10)
				}
				d.Hearing = append(d.Hearing, hearingRow{User: h.UserID, Room: h.Room, Hears: strings.Join(hs, ", ")})
			}
		}
	}
	c.render(w, r, status, "conference", s, "Conference "+e164, d)
}

// conferenceAction ends, delays, renames a conference or changes its
// password, through the API with the session's token.
func (c *Console) conferenceAction(w http.ResponseWriter, r *http.Request, s *session) {
	e164, action := r.PathValue("e164"), r.PathValue("action")
	self := "/conferences/" + url.PathEscape(e164)
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		back(w, r, s, self, err.Error())
		return
	}
	var msg string
	switch action {
	case "end":
		err = u.api().EndConference(u.ctx, e164)
		c.confs.changed(true)
		msg = "Conference " + e164 + " ended."
		if err == nil {
			back(w, r, s, "/conferences", msg)
			return
		}
	case "delay":
		m, perr := strconv.Atoi(strings.TrimSpace(r.PostFormValue("minutes")))
		if perr != nil || m <= 0 {
			back(w, r, s, self, "BAD_REQUEST: minutes: give a whole number of minutes above 0")
			return
		}
		_, err = u.api().DelayConference(u.ctx, e164, m)
		msg = fmt.Sprintf("Conference %s delayed by %d minutes.", e164, m)
	case "rename":
		name := strings.TrimSpace(r.PostFormValue("name"))
		_, err = u.api().UpdateConference(u.ctx, e164, apiclient.UpdateConferenceRequest{Name: &name})
		msg = "Conference " + e164 + " renamed."
	case "password":
		pw := r.PostFormValue("password")
		_, err = u.api().UpdateConference(u.ctx, e164, apiclient.UpdateConferenceRequest{Password: &pw})
		msg = "The password of conference " + e164 + " changed."
		if pw == "" {
			msg = "The password of conference " + e164 + " removed."
		}
	default:
		http.Error(w, "NOT_FOUND: use end, delay, rename or password", http.StatusNotFound)
		return
	}
	c.confs.changed(true)
	if err != nil {
		msg = apiError(err)
	}
	back(w, r, s, self, msg)
}
