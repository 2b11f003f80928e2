package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/convene/convene/internal/apiclient"
	"github.com/convene/convene/internal/bus"
	"github.com/convene/convene/internal/codes"
	"github.com/convene/convene/internal/protocol"
)

func TestDomainConferences(t *testing.T) {
	h := newHarness(t)
	pub := h.conference(protocol.Conference{E164: "6600003", Public: true}, "n1")
	closed := h.conference(protocol.Conference{E164: "6600001", Invited: []string{"mt1"}}, "n1")
	creating := h.conference(protocol.Conference{E164: "6600002", Public: true}, "")
	h.conference(protocol.Conference{E164: "6600009", Domain: "empty"}, "n2")

	list := func(query string) []string {
		t.Helper()
		status, body := h.do("GET", "/v1/domains/acme/conferences"+query, "")
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", query, status, body)
		}
		var out []string
		for _, c := range decodeBody[apiclient.ConferenceList](t, body).Conferences {
			out = append(out, c.E164)
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{closed.E164, creating.E164, pub.E164}},
		{"?public_only=true", []string{creating.E164, pub.E164}},
		{"?public_only=false", []string{closed.E164, creating.E164, pub.E164}},
		{"?terminal=mt1", []string{closed.E164, creating.E164, pub.E164}},
		{"?terminal=mt9", []string{creating.E164, pub.E164}},
		{"?state=running", []string{closed.E164, pub.E164}},
		{"?state=creating", []string{creating.E164}},
		{"?state=pending-restore", nil},
		{"?state=running&public_only=true", []string{pub.E164}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			if got := list(tc.query); !equalJSON(t, got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("empty list is an array", func(t *testing.T) {
		status, body := h.do("GET", "/v1/domains/acme/conferences?state=pending-restore", "")
		if status != 200 || string(body) != "{\"conferences\":[]}\n" {
			t.Fatalf("%d %q", status, body)
		}
	})
	t.Run("unknown domain", func(t *testing.T) {
		status, body := h.do("GET", "/v1/domains/nobody/conferences", "")
		wantError(t, status, body, 404, codes.DomainNotFound, `domain "nobody" is not known`)
	})
}

func TestLicense(t *testing.T) {
	h := newHarness(t)
	h.conference(protocol.Conference{}, "n1")
	h.conference(protocol.Conference{}, "n1")

	status, body := h.do("GET", "/v1/domains/acme/license", "")
	got := decodeBody[apiclient.License](t, body)
	if status != 200 || got.Domain != "acme" || len(got.Limits) != 8 ||
		got.Limits["8_720p"] != 5 || got.InUse["8_720p"] != 2 || got.Remaining["8_720p"] != 3 ||
		got.Limits["32_1080p"] != 2 || got.Remaining["32_1080p"] != 2 || got.Limits["192_1080p"] != 0 {
		t.Fatalf("GET: %d %s", status, body)
	}

	status, body = h.do("PUT", "/v1/domains/acme/license", `{"limits":{"8_720p":1,"64_720p":4}}`)
	got = decodeBody[apiclient.License](t, body)
	if status != 200 || got.Limits["8_720p"] != 1 || got.InUse["8_720p"] != 2 || got.Remaining["8_720p"] != 0 ||
		got.Limits["64_720p"] != 4 || got.Limits["32_1080p"] != 2 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	u, err := h.store.License(context.Background(), "acme")
	if err != nil || u.Limits["64_720p"] != 4 || u.Limits["32_1080p"] != 2 {
		t.Fatalf("store after PUT: %+v, %v", u, err)
	}

	status, body = h.do("GET", "/v1/domains/nobody/license", "")
	wantError(t, status, body, 404, codes.DomainNotFound, `"nobody"`)
	status, body = h.do("PUT", "/v1/domains/nobody/license", `{"limits":{"8_720p":1}}`)
	wantError(t, status, body, 404, codes.DomainNotFound, `"nobody"`)
}

func TestTemplates(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	sched := h.fake(protocol.SubjectCMMAU(platform), func(m *bus.Msg) any {
		var req protocol.TemplateReq
		_ = m.Decode(&req)
		tp := req.Template
		switch m.Type {
		case protocol.CMCreateTemplateReq, protocol.CMModifyTemplateReq:
			if m.Type == protocol.CMModifyTemplateReq {
				if _, err := h.store.Template(ctx, tp.E164); err != nil {
					return nack(protocol.MAUModifyTemplateNak, codes.TemplateNotFound, "template "+tp.E164+" does not exist")
				}
			}
			tp.Platform, tp.CreateTime = platform, 1_700_000_000_000
			e164, err := h.store.PutTemplate(ctx, tp, storeNumbering)
			if err != nil {
				return nack(protocol.MAUCreateTemplateNak, codes.StoreError, err.Error())
			}
			tp.E164 = e164
			return protocol.TemplateAck{Type: m.Type[:len(m.Type)-3] + "ACK", Template: tp}
		case protocol.CMDeleteTemplateReq:
			if err := h.store.DeleteTemplate(ctx, tp.E164); err != nil {
				return nack(protocol.MAUDeleteTemplateNak, codes.TemplateNotFound, "template "+tp.E164+" does not exist")
			}
			return protocol.TemplateAck{Type: protocol.MAUDeleteTemplateAck, Template: tp}
		}
		return nil
	})

	status, body := h.do("POST", "/v1/templates", `{"name":"board","domain":"acme","scale":32,"resolution":"1080p","duration_minutes":90,"public":true,"invited":["mt1"],"password":"pw"}`)
	created := decodeBody[apiclient.Template](t, body)
	if status != 201 || created.E164 == "" || created.Name != "board" || !created.HasPassword || created.Platform != platform ||
		created.CreatedAt.UnixMilli() != 1_700_000_000_000 || len(created.Invited) != 1 {
		t.Fatalf("create: %d %s", status, body)
	}
	var req protocol.TemplateReq
	sched.last(t, &req)
	if req.Type != protocol.CMCreateTemplateReq || req.Template.Scale != 32 || req.Template.Password != "pw" || req.Template.DurationMinutes != 90 {
		t.Fatalf("scheduler got %+v", req)
	}
	h.do("POST", "/v1/templates", `{"name":"private","domain":"acme","scale":8,"resolution":"720p","duration_minutes":30}`)

	status, body = h.do("GET", "/v1/templates/"+created.E164, "")
	if got := decodeBody[apiclient.Template](t, body); status != 200 || got.Name != "board" || !got.Public {
		t.Fatalf("get: %d %s", status, body)
	}
	status, body = h.do("GET", "/v1/domains/acme/templates", "")
	if got := decodeBody[apiclient.TemplateList](t, body).Templates; status != 200 || len(got) != 2 {
		t.Fatalf("list: %d %s", status, body)
	}
	status, body = h.do("GET", "/v1/domains/acme/templates?public_only=true", "")
	if got := decodeBody[apiclient.TemplateList](t, body).Templates; status != 200 || len(got) != 1 || got[0].E164 != created.E164 {
		t.Fatalf("public list: %d %s", status, body)
	}
	status, body = h.do("GET", "/v1/domains/empty/templates", "")
	if status != 200 || string(body) != "{\"templates\":[]}\n" {
		t.Fatalf("empty list: %d %s", status, body)
	}
	status, body = h.do("GET", "/v1/domains/nobody/templates", "")
	wantError(t, status, body, 404, codes.DomainNotFound, "nobody")

	status, body = h.do("PUT", "/v1/templates/"+created.E164, `{"name":"board2","domain":"acme","scale":64,"resolution":"720p","duration_minutes":45}`)
	if got := decodeBody[apiclient.Template](t, body); status != 200 || got.Name != "board2" || got.Scale != 64 || got.E164 != created.E164 {
		t.Fatalf("put: %d %s", status, body)
	}
	sched.last(t, &req)
	if req.Type != protocol.CMModifyTemplateReq || req.Template.E164 != created.E164 {
		t.Fatalf("scheduler got %+v", req)
	}
	status, body = h.do("PUT", "/v1/templates/6699999", `{"name":"x","domain":"acme","scale":8,"resolution":"720p","duration_minutes":45}`)
	wantError(t, status, body, 404, codes.TemplateNotFound, "template 6699999 does not exist")

	if status, body := h.do("DELETE", "/v1/templates/"+created.E164, ""); status != 204 {
		t.Fatalf("delete: %d %s", status, body)
	}
	status, body = h.do("DELETE", "/v1/templates/"+created.E164, "")
	wantError(t, status, body, 404, codes.TemplateNotFound, created.E164)
	status, body = h.do("GET", "/v1/templates/"+created.E164, "")
	wantError(t, status, body, 404, codes.TemplateNotFound, created.E164)
}
