package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/license"
	"github.com/convene/convene/internal/protocol"
	"github.com/convene/convene/internal/testkit"
)

// TestClientRoundTrip calls every client method against the server.
func TestClientRoundTrip(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c := h.client
	running := h.conference(protocol.Conference{Name: "standing", Public: true}, "n1")

	h.fake(protocol.SubjectCMMAU(platform), func(m *bus.Msg) any {
		switch m.Type {
		case protocol.CMCreateConfReq:
			var req protocol.CreateConfReq
			_ = m.Decode(&req)
			if req.Domain == "full" {
				return nack(protocol.MAUCreateConfNack, codes.LicenseExhausted, `domain "full" has 5 of 5 conferences of class 8_720p running`)
			}
			return protocol.CreateConfAck{Type: protocol.MAUCreateConfAck, Conf: protocol.Conference{
				E164: "6600100", Name: req.Name, Domain: req.Domain, State: protocol.StateRunning, Scale: req.Scale,
				Resolution: req.Resolution, Invited: req.Invited, Recording: req.Recording,
			}}
		case protocol.CMCreateTemplateReq, protocol.CMModifyTemplateReq:
			var req protocol.TemplateReq
			_ = m.Decode(&req)
			e164, err := h.store.PutTemplate(ctx, req.Template, storeNumbering)
			if err != nil {
				return nack("ERROR", codes.StoreError, err.Error())
			}
			req.Template.E164 = e164
			return protocol.TemplateAck{Type: protocol.MAUCreateTemplateAck, Template: req.Template}
		case protocol.CMDeleteTemplateReq:
			var req protocol.TemplateReq
			_ = m.Decode(&req)
			_ = h.store.DeleteTemplate(ctx, req.Template.E164)
			return protocol.TemplateAck{Type: protocol.MAUDeleteTemplateAck}
		}
		return nil
	})
	h.fake(protocol.SubjectConfControl(running.E164), func(m *bus.Msg) any {
		switch m.Type {
		case protocol.CMDelayConfReq:
			var req protocol.DelayConfReq
			_ = m.Decode(&req)
			_, _, _ = h.store.Delay(ctx, req.E164, req.Minutes)
		case protocol.CMModifyConfNameReq:
			var req protocol.ModifyConfNameReq
			_ = m.Decode(&req)
			_ = h.store.Update(ctx, req.E164, "confname", req.Name)
		case protocol.CMStartMonitorReq:
			var req protocol.MonitorReq
			_ = m.Decode(&req)
			_ = h.store.AddMonitor(ctx, req.E164, monitorAddr(req.IP, req.Port), 1)
		}
		return protocol.Ack{Type: m.Type[:len(m.Type)-3] + "ACK"}
	})
	h.fake(protocol.SubjectRMS(platform), func(m *bus.Msg) any {
		if m.Type == protocol.RMSNodeListReq {
			return protocol.NodeListAck{Type: protocol.RMSNodeListAck, Nodes: []protocol.NodeInfo{{Node: "n1", State: "up"}}}
		}
		return protocol.RoomListAck{Type: protocol.RMSRoomListAck, Rooms: []protocol.RoomInfo{{Room: "room-a1"}}}
	})
	h.fake(protocol.SubjectRegistry(platform), func(m *bus.Msg) any {
		return protocol.RegistryQueryAck{Type: protocol.UPUQueryAck, Entry: protocol.RegistryEntry{E164: running.E164, Kind: protocol.EntryInstant}}
	})

	created, err := c.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: "new", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 30, Invited: []string{"mt1"}, Recording: true})
	if err != nil || created.E164 != "6600100" || created.Name != "new" || !created.Recording || len(created.Invited) != 1 {
		t.Fatalf("CreateConference = %+v, %v", created, err)
	}
	_, err = c.CreateConference(ctx, apiclient.CreateConferenceRequest{Name: "new", Domain: "full", Scale: 8, Resolution: "720p", DurationMinutes: 30})
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != codes.LicenseExhausted ||
		ae.Error() != `LICENSE_EXHAUSTED: domain "full" has 5 of 5 conferences of class 8_720p running` {
		t.Fatalf("licence-exhausted create: %v", err)
	}
	if got, err := c.Conference(ctx, running.E164); err != nil || got.Name != "standing" {
		t.Fatalf("Conference = %+v, %v", got, err)
	}
	if _, err := c.Conference(ctx, "6699999"); !errors.As(err, &ae) || ae.Status != 404 || ae.Code != codes.ConfNotFound {
		t.Fatalf("Conference of nothing: %v", err)
	}
	if got, err := c.DelayConference(ctx, running.E164, 15); err != nil || got.DurationMinutes != 75 {
		t.Fatalf("DelayConference = %+v, %v", got, err)
	}
	name := "renamed"
	if got, err := c.UpdateConference(ctx, running.E164, apiclient.UpdateConferenceRequest{Name: &name}); err != nil || got.Name != "renamed" {
		t.Fatalf("UpdateConference = %+v, %v", got, err)
	}
	if list, err := c.DomainConferences(ctx, "acme", apiclient.ListOptions{PublicOnly: true, State: "running", Terminal: "mt1"}); err != nil || len(list) != 1 || list[0].E164 != running.E164 {
		t.Fatalf("DomainConferences = %+v, %v", list, err)
	}
	if lic, err := c.License(ctx, "acme"); err != nil || lic.Limits["8_720p"] != 5 || lic.InUse["8_720p"] != 1 {
		t.Fatalf("License = %+v, %v", lic, err)
	}
	if lic, err := c.SetLicense(ctx, "acme", apiclient.SetLicenseRequest{Limits: license.Limits{"8_720p": 9}}); err != nil || lic.Limits["8_720p"] != 9 || lic.Remaining["8_720p"] != 8 {
		t.Fatalf("SetLicense = %+v, %v", lic, err)
	}
	mon, err := c.StartMonitor(ctx, running.E164, apiclient.MonitorRequest{IP: "::1", Port: 7000})
	if err != nil || mon.Addr != "[::1]:7000" {
		t.Fatalf("StartMonitor = %+v, %v", mon, err)
	}
	if ms, err := c.Monitors(ctx, running.E164); err != nil || len(ms) != 1 || ms[0].Addr != mon.Addr {
		t.Fatalf("Monitors = %+v, %v", ms, err)
	}
	if err := c.KeepMonitorAlive(ctx, running.E164, mon.Addr); err != nil {
		t.Fatalf("KeepMonitorAlive: %v", err)
	}
	if err := c.StopMonitor(ctx, running.E164, mon.Addr); err != nil {
		t.Fatalf("StopMonitor: %v", err)
	}
	tpl, err := c.CreateTemplate(ctx, apiclient.TemplateRequest{Name: "t", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 30, Public: true})
	if err != nil || tpl.E164 == "" {
		t.Fatalf("CreateTemplate = %+v, %v", tpl, err)
	}
	if got, err := c.Template(ctx, tpl.E164); err != nil || got.Name != "t" {
		t.Fatalf("Template = %+v, %v", got, err)
	}
	if got, err := c.UpdateTemplate(ctx, tpl.E164, apiclient.TemplateRequest{Name: "t2", Domain: "acme", Scale: 8, Resolution: "720p", DurationMinutes: 30}); err != nil || got.Name != "t2" {
		t.Fatalf("UpdateTemplate = %+v, %v", got, err)
	}
	if list, err := c.DomainTemplates(ctx, "acme", false); err != nil || len(list) != 1 {
		t.Fatalf("DomainTemplates = %+v, %v", list, err)
	}
	if list, err := c.DomainTemplates(ctx, "acme", true); err != nil || len(list) != 0 {
		t.Fatalf("DomainTemplates public = %+v, %v", list, err)
	}
	if err := c.DeleteTemplate(ctx, tpl.E164); err != nil {
		t.Fatalf("DeleteTemplate: %v", err)
	}
	if nodes, err := c.Nodes(ctx); err != nil || len(nodes) != 1 || nodes[0].Conferences != 1 {
		t.Fatalf("Nodes = %+v, %v", nodes, err)
	}
	if rooms, err := c.Rooms(ctx); err != nil || len(rooms) != 1 {
		t.Fatalf("Rooms = %+v, %v", rooms, err)
	}
	if ps, err := c.Platforms(ctx); err != nil || len(ps) != 1 || !ps[0].Local {
		t.Fatalf("Platforms = %+v, %v", ps, err)
	}
	if e, err := c.Registry(ctx, running.E164); err != nil || e.Kind != "conference" {
		t.Fatalf("Registry = %+v, %v", e, err)
	}
	if err := h.fakes.Publish(protocol.SubjectCMNotifications, protocol.ConfStateNtf{Type: protocol.MAUConfStateNtf, E164: running.E164}); err != nil {
		t.Fatal(err)
	}
	testkit.Await(t, "the event through the client", func() bool {
		evs, err := c.Events(ctx, apiclient.EventOptions{E164: running.E164, Limit: 5})
		return err == nil && len(evs) == 1 && evs[0].Type == protocol.MAUConfStateNtf
	})
	if hl, err := c.Health(ctx); err != nil || hl.Status != "ok" {
		t.Fatalf("Health = %+v, %v", hl, err)
	}
	if err := c.EndConference(ctx, running.E164); err != nil {
		t.Fatalf("EndConference: %v", err)
	}
	bad := apiclient.New(h.http.URL, "wrong-token-wrong-token")
	defer bad.CloseIdleConnections()
	if _, err := bad.Nodes(ctx); !errors.As(err, &ae) || ae.Status != 401 || ae.Code != codes.Unauthorized {
		t.Fatalf("wrong token: %v", err)
	}
}

// TestClientForeignErrors: an error page that is not the API's envelope
// keeps its status.
func TestClientForeignErrors(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream is down", http.StatusBadGateway)
	}))
	defer hs.Close()
	c := apiclient.New(hs.URL+"/", "token")
	defer c.CloseIdleConnections()
	_, err := c.Platforms(context.Background())
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Code != "HTTP_502" || ae.Message != "upstream is down" {
		t.Fatalf("err = %#v", err)
	}
}
