package api

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/config"
	"github.com/convene/convene/internal/protocol"
)

const platSince = int64(1_700_000_000_000)

// withPeers makes the harness's topology four platforms: plat-a (local),
// plat-b whose backup it is (so plat-b is its master), plat-c its backup,
// and plat-d, a stranger.
func withPeers(h *harness) {
	h.srv.cfg.Platforms[0].Backups = []string{"plat-c"}
	h.srv.cfg.Platforms = append(h.srv.cfg.Platforms,
		config.Platform{Moid: "plat-b", Name: "Shanghai", NumberSegment: "77", Backups: []string{platform},
			Rooms: []config.Room{{Moid: "room-b1", Name: "Pudong", Type: "main"}}},
		config.Platform{Moid: "plat-c", Name: "Shenzhen", NumberSegment: "88"},
		config.Platform{Moid: "plat-d", Name: "Chengdu", NumberSegment: "99"},
	)
}

// fakePlatformPMS stands in for the local platform monitor: it answers
// the platform requests with plat-a's view (plat-b its master, plat-c its
// backup) and applies PLATFORM_SET_REQ and PLATFORM_DR_SET_REQ to it.
func (h *harness) fakePlatformPMS() *fake {
	view := protocol.PlatformStateNtf{
		Platform: platform, State: protocol.PlatformNormal,
		Masters: []protocol.PlatformInfo{{Platform: "plat-b", Name: "Shanghai", State: protocol.PlatformNormal,
			Observed: protocol.PlatformNormal, DRMode: protocol.DRAutomatic, SinceMs: platSince}},
		Backups: []protocol.PlatformInfo{{Platform: "plat-c", Name: "Shenzhen", State: protocol.PlatformAbnormal,
			Observed: protocol.PlatformUnreachable, Reason: "unreachable: no answer to 4 polls", SinceMs: platSince}},
	}
	selfSince := platSince
	answer := func(typ string) protocol.PlatformStateNtf {
		v := view
		v.Type = typ
		v.Masters = append([]protocol.PlatformInfo(nil), view.Masters...)
		return v
	}
	return h.fake(protocol.SubjectPMS(platform), func(m *bus.Msg) any {
		switch m.Type {
		case protocol.PlatformStateRq:
			return answer(protocol.PlatformStateNotify)
		case protocol.PlatformConfigRq:
			return protocol.PlatformConfigNtf{Type: protocol.PlatformConfigNotify, Platform: protocol.PlatformInfo{
				Platform: platform, State: view.State, Reason: view.Reason, Manual: view.Manual, SinceMs: selfSince}}
		case protocol.PlatformSetRq:
			var req protocol.PlatformSetReq
			_ = m.Decode(&req)
			view.State, view.Manual, view.Reason = req.State, false, ""
			if req.State == protocol.PlatformAbnormal {
				view.Manual, view.Reason = true, req.Reason
			}
			selfSince += 1000
			return answer(protocol.PlatformSetAck)
		case protocol.PlatformDRSetRq:
			var req protocol.PlatformDRSetReq
			_ = m.Decode(&req)
			switch req.Platform {
			case "plat-b":
				view.Masters[0].DRMode = req.Mode
				return answer(protocol.PlatformDRSetAck)
			case "plat-c":
				return nack(protocol.PlatformDRSetNack, codes.BadRequest, `"plat-c" is a backup of platform "plat-a", not a master`)
			}
			return nack(protocol.PlatformDRSetNack, codes.UnknownPlatform, `"`+req.Platform+`" is neither platform "plat-a" nor one of its masters or backups`)
		}
		return nil
	})
}

func TestListPlatforms(t *testing.T) {
	h := newHarness(t)
	withPeers(h)

	// No monitor: the configuration alone, relations from it.
	status, body := h.do("GET", "/v1/platforms", "")
	got := decodeBody[apiclient.PlatformList](t, body).Platforms
	if status != 200 || len(got) != 4 {
		t.Fatalf("without a monitor: %d %s", status, body)
	}
	for i, want := range []string{"self", "master", "backup", ""} {
		if got[i].Relation != want || got[i].State != "normal" || got[i].Observed != "" || got[i].DRMode != "" || !got[i].Since.IsZero() {
			t.Fatalf("without a monitor, %s = %+v; want relation %q and the configuration alone", got[i].Moid, got[i], want)
		}
	}

	h.fakePlatformPMS()
	status, body = h.do("GET", "/v1/platforms", "")
	got = decodeBody[apiclient.PlatformList](t, body).Platforms
	since := time.UnixMilli(platSince).UTC()
	want := []apiclient.Platform{
		{Moid: platform, Name: "Demo platform", NumberSegment: "66", Rooms: got[0].Rooms, Backups: []string{"plat-c"},
			State: "normal", Local: true, Relation: "self", Since: since},
		{Moid: "plat-b", Name: "Shanghai", NumberSegment: "77", Rooms: []apiclient.PlatformRoom{{Moid: "room-b1", Name: "Pudong", Type: "main"}},
			Backups: []string{platform}, State: "normal", Relation: "master", Observed: "normal", DRMode: "automatic", Since: since},
		{Moid: "plat-c", Name: "Shenzhen", NumberSegment: "88", Rooms: []apiclient.PlatformRoom{}, Backups: []string{}, State: "abnormal",
			Relation: "backup", Observed: "unreachable", Reason: "unreachable: no answer to 4 polls", Since: since},
		{Moid: "plat-d", Name: "Chengdu", NumberSegment: "99", Rooms: []apiclient.PlatformRoom{}, Backups: []string{}, State: "normal"},
	}
	if status != 200 || !equalJSON(t, got, want) {
		t.Fatalf("with the monitor: %d %s", status, body)
	}
	if !strings.Contains(string(body), `"relation":"self"`) || !strings.Contains(string(body), `"drmode":"automatic"`) {
		t.Fatalf("body %s", body)
	}
}

func TestFailAndRecoverPlatform(t *testing.T) {
	h := newHarness(t)
	withPeers(h)
	f := h.fakePlatformPMS()

	status, body := h.do("POST", "/v1/platforms/plat-a/fail", `{"reason": "datacenter move"}`)
	got := decodeBody[apiclient.PlatformList](t, body).Platforms
	if status != 200 || len(got) != 4 || got[0].State != "abnormal" || !got[0].Manual || got[0].Reason != "datacenter move" ||
		!got[0].Since.Equal(time.UnixMilli(platSince+1000)) || got[1].DRMode != "automatic" {
		t.Fatalf("fail: %d %s", status, body)
	}
	// The last message asked for the local platform's time of change; the
	// switchover came before it.
	var req protocol.PlatformSetReq
	ms := f.received()
	if err := ms[len(ms)-2].Decode(&req); err != nil || req != (protocol.PlatformSetReq{Type: protocol.PlatformSetRq, State: "abnormal", Reason: "datacenter move"}) {
		t.Fatalf("PMS got %+v (%v); all: %v", req, err, f.types())
	}
	for _, body := range []string{"", "{}"} {
		if status, resp := h.do("POST", "/v1/platforms/plat-a/fail", body); status != 200 {
			t.Fatalf("fail with body %q: %d %s", body, status, resp)
		}
	}

	status, body = h.do("POST", "/v1/platforms/plat-a/recover", "")
	got = decodeBody[apiclient.PlatformList](t, body).Platforms
	if status != 200 || got[0].State != "normal" || got[0].Manual || got[0].Reason != "" {
		t.Fatalf("recover: %d %s", status, body)
	}
}

func TestSetPlatformDRMode(t *testing.T) {
	h := newHarness(t)
	withPeers(h)
	f := h.fakePlatformPMS()

	status, body := h.do("PUT", "/v1/platforms/plat-b/dr", `{"mode": "closed"}`)
	got := decodeBody[apiclient.PlatformList](t, body).Platforms
	if status != 200 || got[1].Moid != "plat-b" || got[1].DRMode != "closed" || got[1].Relation != "master" {
		t.Fatalf("dr: %d %s", status, body)
	}
	var req protocol.PlatformDRSetReq
	ms := f.received()
	if err := ms[len(ms)-2].Decode(&req); err != nil || req != (protocol.PlatformDRSetReq{Type: protocol.PlatformDRSetRq, Platform: "plat-b", Mode: "closed"}) {
		t.Fatalf("PMS got %+v (%v)", req, err)
	}
}

func TestPlatformRouteErrors(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.RequestTimeout = 300 * time.Millisecond })
	withPeers(h)

	status, body := h.do("POST", "/v1/platforms/plat-a/fail", "")
	wantError(t, status, body, 503, codes.PMSUnavailable, "no platform monitor (PMS) answers on monitor.req.plat-a")
	silent := h.fake(protocol.SubjectPMS(platform), func(*bus.Msg) any { return nil })
	status, body = h.do("PUT", "/v1/platforms/plat-b/dr", `{"mode": "manual-on"}`)
	wantError(t, status, body, 504, codes.PMSTimeout, "the platform monitor (PMS) did not answer on monitor.req.plat-a in time")
	silent.stop(h)

	f := h.fakePlatformPMS()
	// Each case is refused by the API itself unless the monitor refuses it
	// (byPMS).
	cases := []struct {
		name, method, path, body string
		status                   int
		code, want               string
		byPMS                    bool
	}{
		{"another platform", "POST", "/v1/platforms/plat-b/fail", "", 400, codes.BadRequest,
			`this API serves platform "plat-a": switch platform plat-b over on its own API`, false},
		{"another platform back", "POST", "/v1/platforms/plat-c/recover", "", 400, codes.BadRequest, "switch platform plat-c back on its own API", false},
		{"unknown platform", "POST", "/v1/platforms/plat-z/fail", "", 404, codes.UnknownPlatform, `platform "plat-z" is not configured`, false},
		{"long reason", "POST", "/v1/platforms/plat-a/fail", `{"reason": "` + strings.Repeat("x", 257) + `"}`, 400, codes.BadRequest,
			`field "reason" must be at most 256 bytes, not 257`, false},
		{"recover takes no reason", "POST", "/v1/platforms/plat-a/recover", `{"reason": "x"}`, 400, codes.BadRequest, `unknown field "reason"`, false},
		{"bad moid", "POST", "/v1/platforms/a.b/fail", "", 400, codes.BadRequest, `platform "a.b" in the path must be 1 to 64 letters`, false},
		{"bad mode", "PUT", "/v1/platforms/plat-b/dr", `{"mode": "off"}`, 400, codes.BadRequest,
			`field "mode" must be automatic, manual-on, manual-off or closed, not "off"`, false},
		{"no mode", "PUT", "/v1/platforms/plat-b/dr", "", 400, codes.BadRequest, "body is empty", false},
		{"dr of a backup", "PUT", "/v1/platforms/plat-c/dr", `{"mode": "closed"}`, 400, codes.BadRequest, `"plat-c" is a backup of platform "plat-a", not a master`, true},
		{"dr of a stranger", "PUT", "/v1/platforms/plat-z/dr", `{"mode": "closed"}`, 404, codes.UnknownPlatform, `"plat-z" is neither platform "plat-a"`, true},
		{"wrong method", "GET", "/v1/platforms/plat-b/dr", "", 405, codes.MethodNotAllowed, "GET is not served on /v1/platforms/plat-b/dr; use PUT", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(f.received())
			status, body := h.do(c.method, c.path, c.body)
			wantError(t, status, body, c.status, c.code, c.want)
			if reached := len(f.received()) != before; reached != c.byPMS {
				t.Fatalf("reached PMS: %v; want %v (%v)", reached, c.byPMS, f.types()[before:])
			}
		})
	}
}

func TestPlatformClient(t *testing.T) {
	h := newHarness(t)
	withPeers(h)
	h.fakePlatformPMS()
	ctx := context.Background()

	ps, err := h.client.FailPlatform(ctx, platform, "drill")
	if err != nil || ps[0].State != "abnormal" || ps[0].Reason != "drill" {
		t.Fatalf("FailPlatform = %+v, %v", ps, err)
	}
	if ps, err := h.client.Platforms(ctx); err != nil || ps[0].State != "abnormal" || ps[2].Observed != "unreachable" {
		t.Fatalf("Platforms = %+v, %v", ps, err)
	}
	if ps, err := h.client.RecoverPlatform(ctx, platform); err != nil || ps[0].State != "normal" {
		t.Fatalf("RecoverPlatform = %+v, %v", ps, err)
	}
	if ps, err := h.client.SetDRMode(ctx, "plat-b", "manual-off"); err != nil || ps[1].DRMode != "manual-off" {
		t.Fatalf("SetDRMode = %+v, %v", ps, err)
	}
	_, err = h.client.SetDRMode(ctx, "plat-z", "closed")
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != codes.UnknownPlatform {
		t.Fatalf("SetDRMode of a stranger: %v", err)
	}
}
