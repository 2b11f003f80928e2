package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/protocol"
)

const createBody = `{"name":"weekly","domain":"acme","scale":8,"resolution":"720p","duration_minutes":60,
	"password":"s3cret","public":true,"invited":["mt1","mt2"],"recording":true}`

func TestCreateConference(t *testing.T) {
	h := newHarness(t)
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	sched := h.fake(protocol.SubjectCMMAU(platform), func(m *bus.Msg) any {
		var req protocol.CreateConfReq
		_ = m.Decode(&req)
		return protocol.CreateConfAck{Type: protocol.MAUCreateConfAck, Conf: protocol.Conference{
			E164: "6600001", Name: req.Name, Domain: req.Domain, Platform: platform, RealPlatform: platform,
			Room: "room-a1", Node: "n1", NodeIP: "10.0.0.1", State: protocol.StateRunning,
			Scale: req.Scale, Resolution: req.Resolution, Password: req.Password, Public: req.Public,
			Invited: req.Invited, Recording: req.Recording, DurationMinutes: req.DurationMinutes,
			CreateTime: start.UnixMilli(), RealStartTime: start.UnixMilli(), EndTime: start.Add(time.Hour).UnixMilli(),
		}}
	})
	status, body := h.do("POST", "/v1/conferences", createBody)
	if status != http.StatusCreated {
		t.Fatalf("status %d: %s", status, body)
	}
	var req protocol.CreateConfReq
	sched.last(t, &req)
	want := protocol.CreateConfReq{
		Type: protocol.CMCreateConfReq, Name: "weekly", Domain: "acme", Scale: 8, Resolution: "720p",
		DurationMinutes: 60, Password: "s3cret", Public: true, Invited: []string{"mt1", "mt2"}, Recording: true,
	}
	if !equalJSON(t, req, want) {
		t.Fatalf("scheduler got %+v, want %+v", req, want)
	}
	text := string(body)
	for _, s := range []string{
		`"e164":"6600001"`, `"domain":"acme"`, `"node":"n1"`, `"node_ip":"10.0.0.1"`, `"room":"room-a1"`,
		`"real_platform":"plat-a"`, `"duration_minutes":60`, `"has_password":true`, `"invited":["mt1","mt2"]`,
		`"created_at":"2030-01-02T03:04:05Z"`, `"started_at":"2030-01-02T03:04:05Z"`, `"ends_at":"2030-01-02T04:04:05Z"`,
	} {
		if !strings.Contains(text, s) {
			t.Errorf("view lacks %s: %s", s, text)
		}
	}
	if strings.Contains(text, "s3cret") || strings.Contains(text, `"password"`) {
		t.Errorf("view shows the password: %s", text)
	}
	if strings.Contains(text, `"reason"`) {
		t.Errorf("empty reason not omitted: %s", text)
	}
}

// TestCreateStatusMapping checks every NACK code of a create and the bus
// failures against their HTTP status, with the scheduler's sentence passed
// through.
func TestCreateStatusMapping(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.RequestTimeout = 300 * time.Millisecond })
	for _, tc := range []struct {
		code   string
		status int
	}{
		{codes.BadRequest, 400},
		{codes.DomainDisabled, 403},
		{codes.DomainNotFound, 404},
		{codes.LicenseExhausted, 409},
		{codes.E164InUse, 409},
		{codes.E164Exhausted, 409},
		{codes.NodeRejected, 502},
		{codes.RMSError, 502},
		{codes.NoResources, 503},
		{codes.PlatformNotServed, 503},
		{codes.NodeTimeout, 504},
		{codes.RMSTimeout, 504},
		{codes.StoreError, 500},
		{"SOMETHING_NEW", 500},
	} {
		t.Run(tc.code, func(t *testing.T) {
			msg := tc.code + `: domain "acme" has 5 of 5 conferences of class 8_720p running`
			f := h.fake(protocol.SubjectCMMAU(platform), func(m *bus.Msg) any {
				return nack(protocol.MAUCreateConfNack, tc.code, msg)
			})
			defer f.stop(h)
			status, body := h.do("POST", "/v1/conferences", createBody)
			wantError(t, status, body, tc.status, tc.code, msg)
		})
	}
	t.Run("nack without a message", func(t *testing.T) {
		f := h.fake(protocol.SubjectCMMAU(platform), func(m *bus.Msg) any {
			return nack(protocol.MAUCreateConfNack, codes.NoResources, "")
		})
		defer f.stop(h)
		status, body := h.do("POST", "/v1/conferences", createBody)
		wantError(t, status, body, 503, codes.NoResources, "the scheduler refused the request (MAU_CM_CREATECONF_NACK)")
	})
	t.Run("no scheduler", func(t *testing.T) {
		status, body := h.do("POST", "/v1/conferences", createBody)
		wantError(t, status, body, 503, codes.SchedulerUnavailable, "no scheduler answers on mau.cmmau.plat-a")
	})
	t.Run("silent scheduler", func(t *testing.T) {
		f := h.fake(protocol.SubjectCMMAU(platform), func(m *bus.Msg) any { return nil })
		defer f.stop(h)
		status, body := h.do("POST", "/v1/conferences", createBody)
		wantError(t, status, body, 504, codes.SchedulerTimeout, "did not answer on mau.cmmau.plat-a")
	})
}

func TestGetConference(t *testing.T) {
	h := newHarness(t)
	c := h.conference(protocol.Conference{Name: "daily", Password: "pw", Invited: nil}, "n1")
	status, body := h.do("GET", "/v1/conferences/"+c.E164, "")
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	got := decodeBody[apiclient.Conference](t, body)
	if got.E164 != c.E164 || got.Name != "daily" || got.State != protocol.StateRunning || got.Node != "n1" ||
		!got.HasPassword || got.Invited == nil || got.StartedAt.IsZero() || got.EndsAt.UnixMilli() != c.EndTime {
		t.Fatalf("view = %+v of %+v", got, c)
	}
	if !strings.Contains(string(body), `"invited":[]`) {
		t.Errorf("invited is not an empty array: %s", body)
	}
	status, body = h.do("GET", "/v1/conferences/6699999", "")
	wantError(t, status, body, 404, codes.ConfNotFound, "conference 6699999 does not exist")
	status, body = h.do("GET", "/v1/conferences/12ab", "")
	wantError(t, status, body, 400, codes.BadRequest, `e164 "12ab" in the path must be 3 to 32 digits`)
}

// TestConferenceControl drives end, delay and update through a scheduler
// that subscribes the conference's control subject.
func TestConferenceControl(t *testing.T) {
	h := newHarness(t)
	c := h.conference(protocol.Conference{}, "n1")
	ctx := context.Background()
	ctl := h.fake(protocol.SubjectConfControl(c.E164), func(m *bus.Msg) any {
		switch m.Type {
		case protocol.CMDelayConfReq:
			var req protocol.DelayConfReq
			_ = m.Decode(&req)
			end, dur, err := h.store.Delay(ctx, req.E164, req.Minutes)
			if err != nil {
				return nack(protocol.MAUDelayConfNack, codes.StoreError, err.Error())
			}
			return protocol.ConfDurationNtf{Type: protocol.MAUDelayConfAck, E164: req.E164, DurationMinutes: dur, EndTime: end}
		case protocol.CMModifyConfNameReq:
			var req protocol.ModifyConfNameReq
			_ = m.Decode(&req)
			_ = h.store.Update(ctx, req.E164, "confname", req.Name)
			return protocol.Ack{Type: protocol.MAUModifyConfNameAck, E164: req.E164}
		case protocol.CMModifyPasswordReq:
			var req protocol.ModifyPasswordReq
			_ = m.Decode(&req)
			_ = h.store.Update(ctx, req.E164, "password", req.Password)
			return protocol.Ack{Type: protocol.MAUModifyPasswordAck, E164: req.E164}
		case protocol.CMReleaseConfReq:
			return protocol.Ack{Type: protocol.MAUReleaseConfAck, E164: c.E164}
		}
		return nack("ERROR", codes.BadRequest, "unexpected "+m.Type)
	})

	status, body := h.do("POST", "/v1/conferences/"+c.E164+"/delay", `{"minutes":30}`)
	got := decodeBody[apiclient.Conference](t, body)
	if status != 200 || got.DurationMinutes != 90 || got.EndsAt.UnixMilli() != c.EndTime+30*60000 {
		t.Fatalf("delay: %d %+v", status, got)
	}
	var delay protocol.DelayConfReq
	ctl.last(t, &delay)
	if delay.E164 != c.E164 || delay.Minutes != 30 {
		t.Fatalf("scheduler got %+v", delay)
	}

	status, body = h.do("PATCH", "/v1/conferences/"+c.E164, `{"name":"renamed","password":""}`)
	got = decodeBody[apiclient.Conference](t, body)
	if status != 200 || got.Name != "renamed" || got.HasPassword {
		t.Fatalf("patch: %d %+v", status, got)
	}
	types := ctl.types()
	if len(types) != 3 || types[1] != protocol.CMModifyConfNameReq || types[2] != protocol.CMModifyPasswordReq {
		t.Fatalf("scheduler got %v; want delay, rename, then password", types)
	}
	status, body = h.do("PATCH", "/v1/conferences/"+c.E164, `{"password":"new"}`)
	if got := decodeBody[apiclient.Conference](t, body); status != 200 || !got.HasPassword || got.Name != "renamed" {
		t.Fatalf("patch password: %d %+v", status, got)
	}
	if n := len(ctl.types()); n != 4 {
		t.Fatalf("a password-only patch sent %d messages, want 1", n-3)
	}

	status, body = h.do("DELETE", "/v1/conferences/"+c.E164, "")
	if status != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("delete: %d %s", status, body)
	}
	var rel protocol.ConfReq
	ctl.last(t, &rel)
	if rel.Type != protocol.CMReleaseConfReq || rel.E164 != c.E164 {
		t.Fatalf("scheduler got %+v", rel)
	}
}

// TestControlNacks checks that the per-conference NACKs keep their codes.
func TestControlNacks(t *testing.T) {
	h := newHarness(t)
	const e164 = "6600077"
	for _, tc := range []struct {
		name, method, path, body string
		code                     string
		status                   int
	}{
		{"delay not running", "POST", "/delay", `{"minutes":5}`, codes.ConfNotRunning, 409},
		{"delay unknown", "POST", "/delay", `{"minutes":5}`, codes.ConfNotFound, 404},
		{"rename node timeout", "PATCH", "", `{"name":"x"}`, codes.NodeTimeout, 504},
		{"rename rejected", "PATCH", "", `{"name":"x"}`, codes.RenameRejected, 409},
		{"password node rejected", "PATCH", "", `{"password":"x"}`, codes.NodeRejected, 502},
		{"release unknown", "DELETE", "", "", codes.ConfNotFound, 404},
		{"keepalive unknown monitor", "POST", "/monitors/10.1.1.1:5000/keepalive", "", codes.MonitorNotFound, 404},
		{"stop unknown monitor", "DELETE", "/monitors/10.1.1.1:5000", "", codes.MonitorNotFound, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := h.fake(protocol.SubjectConfControl(e164), func(m *bus.Msg) any {
				return nack(m.Type+"_NACK", tc.code, "because "+tc.name)
			})
			defer f.stop(h)
			status, body := h.do(tc.method, "/v1/conferences/"+e164+tc.path, tc.body)
			wantError(t, status, body, tc.status, tc.code, "because "+tc.name)
		})
	}
}

// TestControlFallback: with nobody on the conference's control subject,
// the request goes once to the platform scheduler's subject.
func TestControlFallback(t *testing.T) {
	h := newHarness(t)
	const e164 = "6600088"
	status, body := h.do("DELETE", "/v1/conferences/"+e164, "")
	wantError(t, status, body, 503, codes.SchedulerUnavailable, "no scheduler answers on mau.cmmau.plat-a")

	sched := h.fake(protocol.SubjectCMMAU(platform), func(m *bus.Msg) any {
		return protocol.Ack{Type: protocol.MAUReleaseConfAck, E164: e164}
	})
	status, body = h.do("DELETE", "/v1/conferences/"+e164, "")
	if status != http.StatusNoContent {
		t.Fatalf("fallback delete: %d %s", status, body)
	}
	var rel protocol.ConfReq
	sched.last(t, &rel)
	if rel.Type != protocol.CMReleaseConfReq || rel.E164 != e164 {
		t.Fatalf("platform scheduler got %+v", rel)
	}

	// Once the control subject has a subscriber, it alone is asked.
	ctl := h.fake(protocol.SubjectConfControl(e164), func(m *bus.Msg) any {
		return protocol.Ack{Type: protocol.MAUReleaseConfAck, E164: e164}
	})
	if status, body := h.do("DELETE", "/v1/conferences/"+e164, ""); status != http.StatusNoContent {
		t.Fatalf("control delete: %d %s", status, body)
	}
	if len(ctl.received()) != 1 || len(sched.received()) != 1 {
		t.Fatalf("control got %d, platform got %d; want 1 and 1", len(ctl.received()), len(sched.received()))
	}
}

func TestMonitors(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	c := h.conference(protocol.Conference{}, "n1")
	ctl := h.fake(protocol.SubjectConfControl(c.E164), func(m *bus.Msg) any {
		var req protocol.MonitorReq
		_ = m.Decode(&req)
		addr := monitorAddr(req.IP, req.Port)
		switch m.Type {
		case protocol.CMStartMonitorReq:
			_ = h.store.AddMonitor(ctx, req.E164, addr, 1_700_000_000_000)
			return protocol.Ack{Type: protocol.MAUStartMonitorAck, E164: req.E164}
		case protocol.CMMonitorKeepAlive:
			if err := h.store.KeepMonitorAlive(ctx, req.E164, addr, 1_700_000_001_000); err != nil {
				return nack(protocol.GenericNackType, codes.MonitorNotFound, err.Error())
			}
			return protocol.Ack{Type: protocol.GenericAckType, E164: req.E164}
		case protocol.CMStopMonitorReq:
			_ = h.store.RemoveMonitor(ctx, req.E164, addr)
			return protocol.Ack{Type: protocol.MAUStopMonitorAck, E164: req.E164}
		}
		return nil
	})
	base := "/v1/conferences/" + c.E164 + "/monitors"

	status, body := h.do("POST", base, `{"ip":"10.1.1.1","port":5000}`)
	if m := decodeBody[apiclient.Monitor](t, body); status != 201 || m.Addr != "10.1.1.1:5000" || m.IP != "10.1.1.1" || m.Port != 5000 {
		t.Fatalf("start: %d %s", status, body)
	}
	status, body = h.do("POST", base, `{"ip":"::1","port":6000}`)
	if m := decodeBody[apiclient.Monitor](t, body); status != 201 || m.Addr != "[::1]:6000" {
		t.Fatalf("start v6: %d %s", status, body)
	}

	status, body = h.do("GET", base, "")
	list := decodeBody[apiclient.MonitorList](t, body).Monitors
	if status != 200 || len(list) != 2 || list[0].Addr != "10.1.1.1:5000" || list[0].Port != 5000 ||
		list[0].KeepAliveAt.UnixMilli() != 1_700_000_000_000 || list[1].IP != "::1" {
		t.Fatalf("list: %d %s", status, body)
	}

	if status, body := h.do("POST", base+"/10.1.1.1:5000/keepalive", ""); status != 204 {
		t.Fatalf("keepalive: %d %s", status, body)
	}
	var ka protocol.MonitorReq
	ctl.last(t, &ka)
	if ka != (protocol.MonitorReq{Type: protocol.CMMonitorKeepAlive, E164: c.E164, IP: "10.1.1.1", Port: 5000}) {
		t.Fatalf("keepalive sent %+v", ka)
	}
	status, body = h.do("POST", base+"/10.1.1.1:5001/keepalive", "")
	wantError(t, status, body, 404, codes.MonitorNotFound, "")

	if status, body := h.do("DELETE", base+"/%5B::1%5D:6000", ""); status != 204 {
		t.Fatalf("stop v6: %d %s", status, body)
	}
	ctl.last(t, &ka)
	if ka.Type != protocol.CMStopMonitorReq || ka.IP != "::1" || ka.Port != 6000 {
		t.Fatalf("stop sent %+v", ka)
	}
	_, body = h.do("GET", base, "")
	if list := decodeBody[apiclient.MonitorList](t, body).Monitors; len(list) != 1 {
		t.Fatalf("after stop: %s", body)
	}

	status, body = h.do("DELETE", base+"/not-an-addr", "")
	wantError(t, status, body, 400, codes.BadRequest, `monitor address "not-an-addr" in the path must be ip:port`)
	status, body = h.do("GET", "/v1/conferences/6699999/monitors", "")
	wantError(t, status, body, 404, codes.ConfNotFound, "6699999")
}
