package console

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/config"
)

// PluginID names the console's own plugin: its stop button is not shown,
// since stopping it ends the session that would start it again.
const PluginID = "convene.console"

// gather runs the functions at once and waits for all of them.
func gather(fs ...func()) {
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	wg.Wait()
}

type overviewData struct {
	Platforms    []apiclient.Platform
	PlatformsErr string
	Rooms        []apiclient.Room
	RoomsErr     string
	Nodes        int
	NodesUp      int
	Load         int
	Capacity     int
	NodesErr     string
	Running      int
	Pending      int
	ConfsErr     string
	LiveCalls    int
	CallsErr     string
	Alarms       int
	AlarmsErr    string
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	var d overviewData
	var platforms []apiclient.Platform
	gather(
		func() {
			var err error
			platforms, err = u.api().Platforms(u.ctx)
			d.PlatformsErr = apiError(err)
		},
		func() {
			rooms, err := u.api().Rooms(u.ctx)
			d.Rooms, d.RoomsErr = rooms, apiError(err)
		},
		func() {
			nodes, err := u.api().Nodes(u.ctx)
			d.NodesErr = apiError(err)
			for _, n := range nodes {
				d.Nodes++
				if n.State == "up" {
					d.NodesUp++
				}
				d.Load += n.Conferences
				d.Capacity += n.Capacity
			}
		},
		func() {
			var lc apiclient.LiveCalls
			err := u.do(http.MethodGet, "/v1/calls/live", nil, &lc)
			d.LiveCalls, d.CallsErr = len(lc.Calls), apiError(err)
		},
		func() {
			var al apiclient.AlarmList
			err := u.do(http.MethodGet, "/v1/alarms?state=active", nil, &al)
			d.AlarmsErr = apiError(err)
			for _, a := range al.Alarms {
				if a.ClearedAt == nil {
					d.Alarms++
				}
			}
		},
	)
	d.Platforms = platforms
	if local := localPlatform(platforms); local != "" {
		// The counts come with any page of the list: the smallest page
		// reads one conference, not the list.
		p, err := u.api().PlatformConferencePage(u.ctx, local, "", apiclient.PageOptions{Size: 1})
		d.ConfsErr = apiError(err)
		if err == nil && s.role != config.RoleTenant {
			// The platforms page and the confirmations count and list
			// conferences by room: the whole list, read behind this page
			// (a tenant's lists are never cached).
			u.warmPlatformConferences(local)
		}
		for st, n := range p.Counts {
			if st == "running" {
				d.Running += n
			} else {
				d.Pending += n
			}
		}
	} else if d.PlatformsErr == "" {
		d.ConfsErr = "Not available: no local platform."
	}
	c.render(w, r, http.StatusOK, "overview", s, "Overview", d)
}

// localPlatform is the moid of the API's own platform.
func localPlatform(ps []apiclient.Platform) string {
	for _, p := range ps {
		if p.Local {
			return p.Moid
		}
	}
	return ""
}

// roomRow is a room with the conferences in it, by state.
type roomRow struct {
	apiclient.Room
	Running int
	Moving  int
}

type platformsData struct {
	Platforms    []apiclient.Platform
	PlatformsErr string
	Rooms        []roomRow
	RoomsErr     string
	ConfsErr     string
	// Moving counts the conferences not running yet (pending restore or
	// creating) and those still on the nodes of a failed room: the
	// progress of a room's or a platform's failover.
	Moving int
}

func (c *Console) platforms(w http.ResponseWriter, r *http.Request, s *session) {
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	var d platformsData
	var (
		rooms    []apiclient.Room
		nodes    []apiclient.Node
		nodesErr error
	)
	gather(
		func() {
			var err error
			d.Platforms, err = u.api().Platforms(u.ctx)
			d.PlatformsErr = apiError(err)
		},
		func() {
			var err error
			rooms, err = u.api().Rooms(u.ctx)
			d.RoomsErr = apiError(err)
		},
		func() { nodes, nodesErr = u.api().Nodes(u.ctx) },
	)
	// A room's conferences are those its nodes hold (the store's count
	// of each node): running, or moving when the room failed (a legacy
	// node's never move). Those waiting for a restore or being created
	// are on no node yet: they count in the total only, from the counts
	// that come with any page of the list, so that this page never reads
	// the whole list.
	failed := map[string]bool{}
	for _, rm := range rooms {
		failed[rm.Moid] = rm.State != "normal"
	}
	byRoom := map[string][2]int{}
	if local := localPlatform(d.Platforms); local != "" {
		p, err := u.api().PlatformConferencePage(u.ctx, local, "", apiclient.PageOptions{Size: 1})
		d.ConfsErr = apiError(errors.Join(err, nodesErr))
		for st, n := range p.Counts {
			if st != "running" {
				d.Moving += n
			}
		}
		for _, nd := range nodes {
			n := byRoom[nd.Room]
			if failed[nd.Room] && !nd.Legacy {
				n[1] += nd.Conferences
				d.Moving += nd.Conferences
			} else {
				n[0] += nd.Conferences
			}
			byRoom[nd.Room] = n
		}
	}
	for _, rm := range rooms {
		n := byRoom[rm.Moid]
		d.Rooms = append(d.Rooms, roomRow{Room: rm, Running: n[0], Moving: n[1]})
	}
	c.render(w, r, http.StatusOK, "platforms", s, "Platforms and rooms", d)
}

// confirmData is the confirmation of an action on a room or a platform:
// what it does and what will move.
type confirmData struct {
	Kind, Moid, Action, Post, Verb, Sentence string
	Conferences                              []apiclient.Conference
	More                                     int
	Err                                      string
}

func (c *Console) confirmRoom(w http.ResponseWriter, r *http.Request, s *session) {
	c.confirm(w, r, s, "room")
}

func (c *Console) confirmPlatform(w http.ResponseWriter, r *http.Request, s *session) {
	c.confirm(w, r, s, "platform")
}

// confirm shows what an action on a room or platform will do: failing a
// room moves its conferences to the other rooms, switching a platform
// over moves all of its conferences to its backups.
func (c *Console) confirm(w http.ResponseWriter, r *http.Request, s *session, kind string) {
	moid, action := r.PathValue("moid"), r.PathValue("action")
	if action != "fail" && action != "recover" {
		http.Error(w, "NOT_FOUND: use fail or recover", http.StatusNotFound)
		return
	}
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	d := confirmData{Kind: kind, Moid: moid, Action: action, Post: "/" + kind + "s/" + moid + "/" + action}
	platforms, err := u.api().Platforms(u.ctx)
	if err != nil {
		d.Err = apiError(err)
	}
	local := localPlatform(platforms)
	var confs []apiclient.Conference
	if local != "" {
		all, err := u.platformConferences(local, true)
		d.Err = apiError(err)
		for _, cf := range all {
			if kind == "platform" && (cf.RealPlatform == moid || cf.RealPlatform == "" && cf.Platform == moid) || kind == "room" && cf.Room == moid {
				confs = append(confs, cf)
			}
		}
	}
	sort.Slice(confs, func(i, j int) bool { return confs[i].E164 < confs[j].E164 })
	switch {
	case kind == "room" && action == "fail":
		d.Verb = "Fail room " + moid
		d.Sentence = fmt.Sprintf("Room %s will stop taking conferences; its %d conferences will be restored in the platform's other rooms.", moid, len(confs))
	case kind == "room":
		d.Verb = "Recover room " + moid
		d.Sentence = fmt.Sprintf("Room %s will take conferences again; the %d conferences in other rooms stay where they are.", moid, len(confs))
	case action == "fail":
		var backups []string
		for _, p := range platforms {
			if p.Moid == moid {
				backups = p.Backups
			}
		}
		d.Verb = "Switch platform " + moid + " over"
		d.Sentence = fmt.Sprintf("Platform %s will stop scheduling; its %d conferences will be restored on its backups (%s).",
			moid, len(confs), strings.Join(backups, ", "))
	default:
		d.Verb = "Switch platform " + moid + " back"
		d.Sentence = fmt.Sprintf("Platform %s will schedule again; conferences its backups run keep running there until they end.", moid)
	}
	if len(confs) > 100 {
		d.Conferences, d.More = confs[:100], len(confs)-100
	} else {
		d.Conferences = confs
	}
	c.render(w, r, http.StatusOK, "confirm", s, d.Verb, d)
}

func (c *Console) roomAction(w http.ResponseWriter, r *http.Request, s *session) {
	c.topologyAction(w, r, s, "room")
}

func (c *Console) platformAction(w http.ResponseWriter, r *http.Request, s *session) {
	c.topologyAction(w, r, s, "platform")
}

// topologyAction fails or recovers a room or a platform, then shows the
// platforms page, where the move's progress follows.
func (c *Console) topologyAction(w http.ResponseWriter, r *http.Request, s *session, kind string) {
	moid, action := r.PathValue("moid"), r.PathValue("action")
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		back(w, r, s, "/platforms", err.Error())
		return
	}
	switch {
	case kind == "room" && action == "fail":
		_, err = u.api().FailRoom(u.ctx, moid, "failed from the console by "+s.holder)
	case kind == "room" && action == "recover":
		_, err = u.api().RecoverRoom(u.ctx, moid)
	case action == "fail":
		_, err = u.api().FailPlatform(u.ctx, moid, "switched over from the console by "+s.holder)
	case action == "recover":
		_, err = u.api().RecoverPlatform(u.ctx, moid)
	default:
		http.Error(w, "NOT_FOUND: use fail or recover", http.StatusNotFound)
		return
	}
	c.confs.changed(true)
	msg := fmt.Sprintf("%s %s: %s done; conferences move below until nothing is left moving.", kind, moid, action)
	if err != nil {
		msg = apiError(err)
	}
	back(w, r, s, "/platforms", msg)
}

type nodesData struct {
	Nodes []apiclient.Node
	Err   string
}

func (c *Console) nodes(w http.ResponseWriter, r *http.Request, s *session) {
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	nodes, err := u.api().Nodes(u.ctx)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	c.render(w, r, http.StatusOK, "nodes", s, "Media nodes", nodesData{Nodes: nodes, Err: apiError(err)})
}

// licenceRow is one class of a domain's licence.
type licenceRow struct {
	Class        string
	Limit, InUse int
}

type licenceDomain struct {
	Moid, Name string
	Classes    []licenceRow
	Err        string
}

func (c *Console) licences(w http.ResponseWriter, r *http.Request, s *session) {
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	var doms []licenceDomain
	for _, d := range c.domains {
		if s.role == config.RoleTenant && !slices.Contains(s.domains, d.Moid) {
			continue
		}
		doms = append(doms, licenceDomain{Moid: d.Moid, Name: d.Name})
	}
	fs := make([]func(), len(doms))
	for i := range doms {
		fs[i] = func() {
			l, err := u.api().License(u.ctx, doms[i].Moid)
			doms[i].Err = apiError(err)
			for class, limit := range l.Limits {
				doms[i].Classes = append(doms[i].Classes, licenceRow{Class: class, Limit: limit, InUse: l.InUse[class]})
			}
			sort.Slice(doms[i].Classes, func(a, b int) bool { return doms[i].Classes[a].Class < doms[i].Classes[b].Class })
		}
	}
	gather(fs...)
	c.render(w, r, http.StatusOK, "licences", s, "Licences", doms)
}

type hostsData struct {
	Hosts []apiclient.HostStatus
	Err   string
}

func (c *Console) hosts(w http.ResponseWriter, r *http.Request, s *session) {
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	hs, err := u.api().Hosts(u.ctx)
	c.render(w, r, http.StatusOK, "hosts", s, "Hosts and plugins", hostsData{Hosts: hs, Err: apiError(err)})
}

func (c *Console) pluginAction(w http.ResponseWriter, r *http.Request, s *session) {
	h, p, action := r.PathValue("host"), r.PathValue("plugin"), r.PathValue("action")
	u, cancel, err := c.up(r, s)
	defer cancel()
	if err != nil {
		back(w, r, s, "/hosts", err.Error())
		return
	}
	switch action {
	case "stop":
		_, err = u.api().StopPlugin(u.ctx, h, p)
	case "start":
		_, err = u.api().StartPlugin(u.ctx, h, p)
	default:
		http.Error(w, "NOT_FOUND: use stop or start", http.StatusNotFound)
		return
	}
	msg := fmt.Sprintf("Plugin %s on host %s: %s done.", p, h, action)
	if err != nil {
		msg = apiError(err)
	}
	back(w, r, s, "/hosts", msg)
}
